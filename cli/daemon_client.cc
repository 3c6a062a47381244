#include "cli/daemon_client.h"

#include <grpc/support/log.h>
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <utility>

#include "common/paths.h"
#include "mk8s/v1/control.grpc.pb.h"

namespace mk8s::cli {
namespace {

constexpr std::chrono::minutes kLongCallDeadline{10};  // backup and restore of a large store
constexpr std::chrono::minutes kAddonCallDeadline{10};  // enable/disable: the daemon times calls out

// gRPC logs connection failures on its own; the CLI reports them itself, in one line.
// GRPC_VERBOSITY in the environment turns gRPC's own logging back on for debugging.
void QuietGrpcLogging() {
  static const bool once = [] {
    if (std::getenv("GRPC_VERBOSITY") == nullptr) gpr_set_log_function([](gpr_log_func_args*) {});
    return true;
  }();
  (void)once;
}

std::string OneLine(std::string text) {
  for (char& c : text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  while (!text.empty() && text.back() == ' ') text.pop_back();
  return text;
}

bool SocketExists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace

std::string NotRunningMessage(const std::string& state_dir) {
  std::string start = "mk8s start";
  if (StatePaths(state_dir).state_dir != StatePaths(DefaultStateDir()).state_dir) {
    start = "mk8s --state-dir " + state_dir + " start";
  }
  return "mk8s is not running. Use '" + start + "' to start it.";
}

struct DaemonClient::Stubs {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::Control::Stub> control;
  std::unique_ptr<v1::KV::Stub> kv;
};

DaemonClient::DaemonClient(std::string state_dir)
    : state_dir_(std::move(state_dir)), socket_path_(StatePaths(state_dir_).socket) {}

DaemonClient::~DaemonClient() = default;

CallStatus DaemonClient::Connect() {
  if (stubs_ != nullptr) return {};
  struct stat st {};
  if (::stat(socket_path_.c_str(), &st) != 0) {
    if (errno == EACCES) {
      return {CallCode::kPermissionDenied,
              "permission denied on " + socket_path_ + ": run as root or join its group"};
    }
    return {CallCode::kNotRunning, NotRunningMessage(state_dir_)};
  }
  if (::access(socket_path_.c_str(), R_OK | W_OK) != 0 && errno == EACCES) {
    return {CallCode::kPermissionDenied,
            "permission denied on " + socket_path_ + ": run as root or join its group"};
  }
  QuietGrpcLogging();
  grpc::ChannelArguments args;
  // Each CLI invocation polls a daemon that may be starting: keep reconnect backoff short and do
  // not share connection state with other channels.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 500);
  args.SetMaxReceiveMessageSize(-1);
  auto stubs = std::make_unique<Stubs>();
  stubs->channel =
      grpc::CreateCustomChannel("unix:" + socket_path_, grpc::InsecureChannelCredentials(), args);
  stubs->control = v1::Control::NewStub(stubs->channel);
  stubs->kv = v1::KV::NewStub(stubs->channel);
  stubs_ = std::move(stubs);
  return {};
}

namespace {

// Turns a failed RPC into one line for the user. `what` names the operation ("status").
CallStatus Translate(const grpc::Status& status, const std::string& what,
                     const std::string& state_dir, const std::string& socket_path,
                     std::chrono::milliseconds deadline) {
  if (status.ok()) return {};
  const std::string detail = OneLine(status.error_message());
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      // Dial failures and a daemon that went away look the same to the user: not running.
      if (!SocketExists(socket_path) || detail.find("connect") != std::string::npos ||
          detail.find("Socket closed") != std::string::npos ||
          detail.find("Connection reset") != std::string::npos) {
        return {CallCode::kNotRunning, NotRunningMessage(state_dir)};
      }
      return {CallCode::kNotRunning, "mk8sd is unavailable (" + detail + "): retry in a moment"};
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return {CallCode::kDeadlineExceeded, "mk8sd did not answer " + what + " within " +
                                               std::to_string(deadline.count() / 1000) +
                                               "s: check " + StatePaths(state_dir).log_file};
    case grpc::StatusCode::PERMISSION_DENIED:
      return {CallCode::kPermissionDenied, what + ": permission denied: " + detail};
    case grpc::StatusCode::NOT_FOUND:
      return {CallCode::kNotFound, detail};
    case grpc::StatusCode::ALREADY_EXISTS:
      return {CallCode::kAlreadyExists, detail};
    case grpc::StatusCode::ABORTED:
      return {CallCode::kConflict, detail};
    case grpc::StatusCode::FAILED_PRECONDITION:
      return {CallCode::kFailedPrecondition, detail};
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::OUT_OF_RANGE:
      return {CallCode::kInvalidArgument, what + ": " + detail};
    case grpc::StatusCode::UNIMPLEMENTED:
      return {CallCode::kFailed, what + " is not supported by this mk8sd: upgrade it"};
    default:
      return {CallCode::kFailed, what + " failed: " + detail};
  }
}

}  // namespace

CallStatus DaemonClient::Unary(
    const std::string& what, std::chrono::milliseconds deadline,
    const std::function<grpc::Status(Stubs&, grpc::ClientContext*)>& rpc) {
  if (CallStatus connected = Connect(); !connected.ok()) return connected;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + deadline);
  return Translate(rpc(*stubs_, &context), what, state_dir_, socket_path_, deadline);
}

CallStatus DaemonClient::Version(v1::VersionResponse* out) {
  return Unary("version", deadline_, [&](Stubs& s, grpc::ClientContext* context) {
    return s.control->Version(context, v1::VersionRequest(), out);
  });
}

CallStatus DaemonClient::Status(v1::StatusResponse* out) {
  return Unary("status", deadline_, [&](Stubs& s, grpc::ClientContext* context) {
    return s.control->Status(context, v1::StatusRequest(), out);
  });
}

CallStatus DaemonClient::Stop() {
  return Unary("stop", deadline_, [&](Stubs& s, grpc::ClientContext* context) {
    v1::StopResponse response;
    return s.control->Stop(context, v1::StopRequest(), &response);
  });
}

CallStatus DaemonClient::Backup(const std::string& absolute_path, v1::BackupResponse* out) {
  v1::BackupRequest request;
  request.set_path(absolute_path);
  const auto deadline = std::max<std::chrono::milliseconds>(deadline_, kLongCallDeadline);
  return Unary("backup", deadline, [&](Stubs& s, grpc::ClientContext* context) {
    return s.control->Backup(context, request, out);
  });
}

CallStatus DaemonClient::Restore(const std::string& absolute_path, v1::RestoreResponse* out) {
  v1::RestoreRequest request;
  request.set_path(absolute_path);
  const auto deadline = std::max<std::chrono::milliseconds>(deadline_, kLongCallDeadline);
  return Unary("restore", deadline, [&](Stubs& s, grpc::ClientContext* context) {
    return s.control->Restore(context, request, out);
  });
}

CallStatus DaemonClient::GetKubeconfig(std::string* kubeconfig) {
  v1::GetKubeconfigResponse response;
  CallStatus status = Unary("config", deadline_, [&](Stubs& s, grpc::ClientContext* context) {
    return s.control->GetKubeconfig(context, v1::GetKubeconfigRequest(), &response);
  });
  if (status.ok()) *kubeconfig = response.kubeconfig();
  if (status.code == CallCode::kFailedPrecondition) {
    status.message = "the Kubernetes API server is not available yet: " + status.message;
  }
  return status;
}

CallStatus DaemonClient::EnableAddon(const v1::EnableAddonRequest& request,
                                     v1::EnableAddonResponse* out) {
  const auto deadline = std::max<std::chrono::milliseconds>(deadline_, kAddonCallDeadline);
  return Unary("enable " + request.name(), deadline, [&](Stubs& s, grpc::ClientContext* context) {
    return s.control->EnableAddon(context, request, out);
  });
}

CallStatus DaemonClient::DisableAddon(const std::string& name, v1::DisableAddonResponse* out) {
  v1::DisableAddonRequest request;
  request.set_name(name);
  const auto deadline = std::max<std::chrono::milliseconds>(deadline_, kAddonCallDeadline);
  return Unary("disable " + name, deadline, [&](Stubs& s, grpc::ClientContext* context) {
    return s.control->DisableAddon(context, request, out);
  });
}

CallStatus DaemonClient::ListAddons(bool with_health, v1::ListAddonsResponse* out) {
  v1::ListAddonsRequest request;
  request.set_with_health(with_health);
  return Unary("addons list", deadline_, [&](Stubs& s, grpc::ClientContext* context) {
    return s.control->ListAddons(context, request, out);
  });
}

CallStatus DaemonClient::ImportImage(const std::string& absolute_path,
                                     v1::ImportImageResponse* out) {
  v1::ImportImageRequest request;
  request.set_path(absolute_path);
  const auto deadline = std::max<std::chrono::milliseconds>(deadline_, kLongCallDeadline);
  return Unary("images import", deadline, [&](Stubs& s, grpc::ClientContext* context) {
    return s.control->ImportImage(context, request, out);
  });
}

CallStatus DaemonClient::ListImages(v1::ListImagesResponse* out) {
  return Unary("images ls", deadline_, [&](Stubs& s, grpc::ClientContext* context) {
    return s.control->ListImages(context, v1::ListImagesRequest(), out);
  });
}

CallStatus DaemonClient::Get(const v1::GetRequest& request, v1::GetResponse* out) {
  return Unary("get", deadline_, [&](Stubs& s, grpc::ClientContext* context) {
    return s.kv->Get(context, request, out);
  });
}

CallStatus DaemonClient::List(const v1::ListRequest& request, v1::ListResponse* out) {
  return Unary("list", deadline_, [&](Stubs& s, grpc::ClientContext* context) {
    return s.kv->List(context, request, out);
  });
}

CallStatus DaemonClient::Put(const v1::PutRequest& request, v1::PutResponse* out) {
  return Unary("put", deadline_, [&](Stubs& s, grpc::ClientContext* context) {
    return s.kv->Put(context, request, out);
  });
}

CallStatus DaemonClient::Delete(const v1::DeleteRequest& request, v1::DeleteResponse* out) {
  return Unary("delete", deadline_, [&](Stubs& s, grpc::ClientContext* context) {
    return s.kv->Delete(context, request, out);
  });
}

CallStatus DaemonClient::Watch(const v1::WatchRequest& request,
                               const std::function<bool(const v1::WatchEvent&)>& on_event) {
  if (CallStatus connected = Connect(); !connected.ok()) return connected;
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReader<v1::WatchEvent>> reader = stubs_->kv->Watch(&context, request);
  v1::WatchEvent event;
  while (reader->Read(&event)) {
    if (!on_event(event)) {
      context.TryCancel();
      break;
    }
  }
  grpc::Status status = reader->Finish();
  if (status.error_code() == grpc::StatusCode::CANCELLED) return {};
  return Translate(status, "watch", state_dir_, socket_path_, deadline_);
}

}  // namespace mk8s::cli
