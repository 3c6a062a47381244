// A synchronous client for mk8sd's control socket (proto/mk8s/v1/control.proto).
//
// Every call has a deadline and turns gRPC failures into a CallStatus whose message is one line,
// phrased for the user, naming the next step. gRPC headers stay in daemon_client.cc; this header
// only pulls in the generated protobuf messages.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "mk8s/v1/control.pb.h"

namespace grpc {
class ClientContext;
class Status;
}  // namespace grpc

namespace mk8s::cli {

enum class CallCode {
  kOk,
  kNotRunning,          // no socket, nobody listening, or the daemon went away mid-call
  kPermissionDenied,    // the socket (or its folder) is not accessible to this user
  kNotFound,            // the key or file does not exist
  kAlreadyExists,       // create-only put of an existing key, or backup over an existing file
  kConflict,            // a compare-and-swap revision did not match
  kFailedPrecondition,  // the daemon cannot do this yet (e.g. no Kubernetes API served yet)
  kInvalidArgument,
  kDeadlineExceeded,
  kFailed,  // anything else
};

struct CallStatus {
  CallCode code = CallCode::kOk;
  std::string message;  // one line, empty when ok

  bool ok() const { return code == CallCode::kOk; }
};

// The one-line "not running" message for a state folder, with the exact command to start it.
std::string NotRunningMessage(const std::string& state_dir);

// Talks to the mk8sd that owns `state_dir`. Cheap to create; not thread-safe.
// Every method blocks until the reply, an error, or the call's deadline.
class DaemonClient {
 public:
  explicit DaemonClient(std::string state_dir);
  ~DaemonClient();
  DaemonClient(const DaemonClient&) = delete;
  DaemonClient& operator=(const DaemonClient&) = delete;

  const std::string& socket_path() const { return socket_path_; }

  // Deadline for ordinary calls (default 10 s). Backup and Restore use at least 10 minutes.
  void set_deadline(std::chrono::milliseconds deadline) { deadline_ = deadline; }

  CallStatus Version(v1::VersionResponse* out);
  CallStatus Status(v1::StatusResponse* out);
  CallStatus Stop();
  CallStatus Backup(const std::string& absolute_path, v1::BackupResponse* out);
  CallStatus Restore(const std::string& absolute_path, v1::RestoreResponse* out);
  CallStatus GetKubeconfig(std::string* kubeconfig);
  // Addons. Enable and disable use at least kAddonCallDeadline: the daemon bounds each addon
  // call by its own timeout.
  CallStatus EnableAddon(const v1::EnableAddonRequest& request, v1::EnableAddonResponse* out);
  CallStatus DisableAddon(const std::string& name, v1::DisableAddonResponse* out);
  CallStatus ListAddons(bool with_health, v1::ListAddonsResponse* out);
  // Images in the node's containerd. ImportImage uses at least kLongCallDeadline.
  CallStatus ImportImage(const std::string& absolute_path, v1::ImportImageResponse* out);
  CallStatus ListImages(v1::ListImagesResponse* out);

  CallStatus Get(const v1::GetRequest& request, v1::GetResponse* out);
  CallStatus List(const v1::ListRequest& request, v1::ListResponse* out);
  CallStatus Put(const v1::PutRequest& request, v1::PutResponse* out);
  CallStatus Delete(const v1::DeleteRequest& request, v1::DeleteResponse* out);
  // Streams events to `on_event` until the daemon ends the stream or the callback returns false.
  // No deadline: a watch runs until interrupted.
  CallStatus Watch(const v1::WatchRequest& request,
                   const std::function<bool(const v1::WatchEvent&)>& on_event);

 private:
  struct Stubs;  // the gRPC channel and stubs, created on first use
  // Checks the socket is there and accessible before dialing, so "not running" and "permission
  // denied" are reported precisely and without waiting. Creates stubs_ when ok.
  CallStatus Connect();
  // Connects, runs one unary `rpc` with `deadline`, and translates its failure. `what` names the
  // operation in messages ("status").
  CallStatus Unary(const std::string& what, std::chrono::milliseconds deadline,
                   const std::function<grpc::Status(Stubs&, grpc::ClientContext*)>& rpc);

  std::string state_dir_;
  std::string socket_path_;
  std::chrono::milliseconds deadline_{10000};
  std::unique_ptr<Stubs> stubs_;
};

}  // namespace mk8s::cli
