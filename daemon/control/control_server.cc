// Binds the control socket and owns the gRPC server.
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#include "control/services.h"

namespace mk8s::control {
namespace {

class ControlServerImpl final : public ControlServer {
 public:
  explicit ControlServerImpl(ControlContext context)
      : context_(std::move(context)),
        control_service_(&context_),
        kv_service_(&context_, &shutting_down_) {}
  ~ControlServerImpl() override { Shutdown(); }

  mk8s::Status Start(const std::string& socket_path) {
    socket_path_ = socket_path;
    // A socket file left by a daemon that died is stale: the caller holds the state lock, so no
    // live daemon can own it.
    if (unlink(socket_path.c_str()) != 0 && errno != ENOENT) {
      return mk8s::Status(Code::kInternal, "cannot remove stale socket " + socket_path + ": " +
                                               std::strerror(errno));
    }
    grpc::ServerBuilder builder;
    builder.AddListeningPort("unix:" + socket_path, grpc::InsecureServerCredentials());
    builder.RegisterService(&control_service_);
    if (context_.store != nullptr) builder.RegisterService(&kv_service_);  // dbctl's datastore
    // Keep the idle footprint small: one completion queue and few pollers.
    builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::NUM_CQS, 1);
    builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MIN_POLLERS, 1);
    builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS, 2);
    server_ = builder.BuildAndStart();
    if (!server_) {
      return mk8s::Status(Code::kUnavailable,
                          "cannot listen on " + socket_path + " (is the path too long or the "
                          "folder read-only?)");
    }
    if (chmod(socket_path.c_str(), 0660) != 0) {
      spdlog::warn("cannot set mode 0660 on {}: {}", socket_path, std::strerror(errno));
    }
    return mk8s::Status::Ok();
  }

  void Shutdown() override {
    std::lock_guard lock(shutdown_mu_);
    if (!server_) return;
    shutting_down_ = true;
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    server_->Wait();
    server_.reset();
    unlink(socket_path_.c_str());
  }

 private:
  ControlContext context_;
  std::atomic<bool> shutting_down_{false};
  ControlService control_service_;
  KvService kv_service_;
  std::mutex shutdown_mu_;
  std::unique_ptr<grpc::Server> server_;  // GUARDED_BY(shutdown_mu_) after Start
  std::string socket_path_;
};

}  // namespace

Result<std::unique_ptr<ControlServer>> ControlServer::Start(const std::string& socket_path,
                                                            ControlContext context) {
  auto server = std::make_unique<ControlServerImpl>(std::move(context));
  if (mk8s::Status status = server->Start(socket_path); !status.ok()) return status;
  return std::unique_ptr<ControlServer>(std::move(server));
}

}  // namespace mk8s::control
