// mk8s.v1.Control: status, version, stop, backup/restore and the kubeconfig.
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "common/health.h"
#include "common/version.h"
#include "control/services.h"
#include "store/store.h"

namespace mk8s::control {
namespace {

int64_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t size_pages = 0, resident_pages = 0;
  statm >> size_pages >> resident_pages;
  return resident_pages * sysconf(_SC_PAGESIZE);
}

bool IsAbsolute(const std::string& path) { return !path.empty() && path.front() == '/'; }

}  // namespace

grpc::Status ToGrpc(const mk8s::Status& status) {
  using grpc::StatusCode;
  StatusCode code = StatusCode::UNKNOWN;
  switch (status.code()) {
    case Code::kOk: return grpc::Status::OK;
    case Code::kInvalidArgument: code = StatusCode::INVALID_ARGUMENT; break;
    case Code::kNotFound: code = StatusCode::NOT_FOUND; break;
    case Code::kAlreadyExists: code = StatusCode::ALREADY_EXISTS; break;
    case Code::kConflict: code = StatusCode::ABORTED; break;
    case Code::kCompacted:
    case Code::kFutureRevision: code = StatusCode::OUT_OF_RANGE; break;
    case Code::kUnavailable: code = StatusCode::UNAVAILABLE; break;
    case Code::kResourceExhausted: code = StatusCode::RESOURCE_EXHAUSTED; break;
    case Code::kDeadlineExceeded: code = StatusCode::DEADLINE_EXCEEDED; break;
    case Code::kInternal: code = StatusCode::INTERNAL; break;
  }
  return grpc::Status(code, status.message());
}

// This mk8sd runs no datastore (--components without apiserver).
static grpc::Status NoDatastore() {
  return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                      "this mk8sd runs no datastore (started with --components without "
                      "apiserver): run the command against the daemon that serves the API");
}

grpc::Status ControlService::Version(grpc::ServerContext*, const v1::VersionRequest*,
                                     v1::VersionResponse* reply) {
  reply->set_version(kVersion);
  reply->set_git_commit(kGitCommit);
  reply->set_kubernetes_version(kKubernetesVersion);
  return grpc::Status::OK;
}

grpc::Status ControlService::Status(grpc::ServerContext*, const v1::StatusRequest*,
                                    v1::StatusResponse* reply) {
  reply->set_version(kVersion);
  reply->set_pid(getpid());
  reply->set_uptime_seconds(std::chrono::duration_cast<std::chrono::seconds>(
                                std::chrono::steady_clock::now() - context_->started_at)
                                .count());
  reply->set_state_dir(context_->state_dir);
  for (const ComponentHealth& component : context_->health->Snapshot()) {
    v1::ComponentStatus* out = reply->add_components();
    out->set_name(component.name);
    out->set_ready(component.ready);
    out->set_message(component.message);
  }
  reply->set_ready(context_->health->AllReady());
  // Single node on the embedded SQLite store until the ha-cluster addon replaces it.
  reply->set_high_availability(false);
  reply->add_datastore_nodes("127.0.0.1 (local sqlite)");
  reply->set_rss_bytes(ResidentBytes());
  FillAddons(*context_, /*with_health=*/true, reply->mutable_addons());

  v1::DatastoreStatus* datastore = reply->mutable_datastore();
  datastore->set_backend("sqlite");
  datastore->set_path(context_->datastore_path);
  if (context_->store != nullptr) {
    store::Store& store = *context_->store;
    datastore->set_revision(store.CurrentRevision());
    datastore->set_compacted_revision(store.CompactedRevision());
    if (Result<int64_t> keys = store.Count(""); keys.ok()) datastore->set_keys(*keys);
    const store::Store::Stats stats = store.GetStats();
    datastore->set_writes(stats.writes);
    datastore->set_commits(stats.commits);
    datastore->set_fsyncs(stats.fsyncs);
  }
  return grpc::Status::OK;
}

grpc::Status ControlService::Stop(grpc::ServerContext*, const v1::StopRequest*,
                                  v1::StopResponse*) {
  spdlog::info("stop requested through the control socket");
  context_->request_stop();
  return grpc::Status::OK;
}

grpc::Status ControlService::Backup(grpc::ServerContext*, const v1::BackupRequest* request,
                                    v1::BackupResponse* reply) {
  if (context_->store == nullptr) return NoDatastore();
  const std::string& path = request->path();
  if (!IsAbsolute(path)) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "backup path must be absolute, got '" + path + "'");
  }
  if (access(path.c_str(), F_OK) == 0) {
    return grpc::Status(grpc::StatusCode::ALREADY_EXISTS,
                        path + " already exists: choose a new file name");
  }
  if (mk8s::Status status = context_->store->Backup(path); !status.ok()) return ToGrpc(status);
  struct stat info {};
  if (stat(path.c_str(), &info) == 0) reply->set_bytes(info.st_size);
  reply->set_revision(context_->store->CurrentRevision());
  if (Result<int64_t> keys = context_->store->Count(""); keys.ok()) reply->set_keys(*keys);
  spdlog::info("datastore backed up to {} ({} bytes)", path, reply->bytes());
  return grpc::Status::OK;
}

grpc::Status ControlService::Restore(grpc::ServerContext*, const v1::RestoreRequest* request,
                                     v1::RestoreResponse* reply) {
  if (context_->store == nullptr) return NoDatastore();
  const std::string& path = request->path();
  if (!IsAbsolute(path)) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "restore path must be absolute, got '" + path + "'");
  }
  if (access(path.c_str(), R_OK) != 0) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "cannot read backup file " + path);
  }
  if (mk8s::Status status = context_->store->Restore(path); !status.ok()) return ToGrpc(status);
  reply->set_revision(context_->store->CurrentRevision());
  if (Result<int64_t> keys = context_->store->Count(""); keys.ok()) reply->set_keys(*keys);
  spdlog::warn("datastore restored from {}; revision is now {}", path, reply->revision());
  return grpc::Status::OK;
}

grpc::Status ControlService::GetKubeconfig(grpc::ServerContext*, const v1::GetKubeconfigRequest*,
                                           v1::GetKubeconfigResponse* reply) {
  std::ifstream file(context_->kubeconfig_path);
  if (!file) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "this mk8sd does not serve the Kubernetes API yet, so there is no "
                        "kubeconfig (" + context_->kubeconfig_path + ")");
  }
  std::ostringstream text;
  text << file.rdbuf();
  reply->set_kubeconfig(text.str());
  return grpc::Status::OK;
}

}  // namespace mk8s::control
