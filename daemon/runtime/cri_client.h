// CriClient: blocking calls to a CRI v1 runtime (containerd) over its unix socket.
//
// Every method sends one RPC with its own deadline (kShortDeadline for version/status/list/
// status-of-one calls, kLongDeadline for calls that create, start, stop or pull) and returns
// the response or a Status whose message names the RPC ("CRI RunPodSandbox: <runtime's text>").
// gRPC codes map to mk8s codes: NOT_FOUND -> kNotFound, ALREADY_EXISTS -> kAlreadyExists,
// DEADLINE_EXCEEDED -> kDeadlineExceeded, UNAVAILABLE -> kUnavailable (runtime down or
// restarting: retry), INVALID_ARGUMENT -> kInvalidArgument, anything else -> kInternal.
//
// Threads: a CriClient is thread-safe; all calls share one channel and may run concurrently.
// Connect() does not dial: a runtime that is not up yet is reported by the first call as
// kUnavailable, so a client may be created before containerd has started.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "cri/api.pb.h"

namespace mk8s::runtime {

namespace cri = ::runtime::v1;

// Output of a command run to completion in a container (ExecSync).
struct ExecSyncResult {
  std::string stdout_data;
  std::string stderr_data;
  int exit_code = 0;
};

class CriClient {
 public:
  static constexpr std::chrono::seconds kShortDeadline{10};
  static constexpr std::chrono::minutes kLongDeadline{4};
  static constexpr std::chrono::minutes kPullDeadline{15};

  // A client of the runtime listening on `socket_path` (a path, without "unix:").
  // Fails only for an empty path.
  static Result<std::unique_ptr<CriClient>> Connect(const std::string& socket_path);
  ~CriClient();
  CriClient(const CriClient&) = delete;
  CriClient& operator=(const CriClient&) = delete;

  const std::string& socket_path() const { return socket_path_; }

  // ---- runtime ----
  Result<cri::VersionResponse> Version();
  // The runtime's conditions (RuntimeReady, NetworkReady). verbose adds the runtime's JSON info.
  Result<cri::StatusResponse> Status(bool verbose = false);
  // True when the runtime answers Status and reports `condition` (e.g. "RuntimeReady") true.
  bool ConditionTrue(const std::string& condition);
  mk8s::Status UpdateRuntimeConfig(const std::string& pod_cidr);

  // ---- pod sandboxes ----
  // Runs a sandbox; returns its id. handler "" selects the runtime's default (runc).
  Result<std::string> RunPodSandbox(const cri::PodSandboxConfig& config,
                                    const std::string& handler = "");
  mk8s::Status StopPodSandbox(const std::string& sandbox_id);    // idempotent
  mk8s::Status RemovePodSandbox(const std::string& sandbox_id);  // idempotent
  Result<cri::PodSandboxStatusResponse> PodSandboxStatus(const std::string& sandbox_id,
                                                         bool verbose = false);
  Result<std::vector<cri::PodSandbox>> ListPodSandbox(const cri::PodSandboxFilter& filter = {});

  // ---- containers ----
  // Creates a container in a sandbox; sandbox_config is the config the sandbox was run with.
  Result<std::string> CreateContainer(const std::string& sandbox_id,
                                      const cri::ContainerConfig& config,
                                      const cri::PodSandboxConfig& sandbox_config);
  mk8s::Status StartContainer(const std::string& container_id);
  // SIGTERM (or the image's stop signal), SIGKILL after timeout_seconds (0: at once).
  // The RPC deadline is timeout_seconds + kLongDeadline. Idempotent.
  mk8s::Status StopContainer(const std::string& container_id, int64_t timeout_seconds);
  mk8s::Status RemoveContainer(const std::string& container_id);  // idempotent
  Result<std::vector<cri::Container>> ListContainers(const cri::ContainerFilter& filter = {});
  Result<cri::ContainerStatus> ContainerStatus(const std::string& container_id);
  mk8s::Status UpdateContainerResources(const std::string& container_id,
                                        const cri::LinuxContainerResources& resources);
  // Asks the runtime to reopen the container's log file (after the caller rotated it).
  mk8s::Status ReopenContainerLog(const std::string& container_id);

  // ---- exec, attach, port-forward ----
  // Runs cmd to completion. timeout_seconds 0 = no limit from the runtime (the RPC deadline is
  // then kLongDeadline); otherwise the RPC deadline is timeout_seconds + kShortDeadline.
  // A non-zero exit code is a successful call: look at ExecSyncResult::exit_code.
  Result<ExecSyncResult> ExecSync(const std::string& container_id,
                                  const std::vector<std::string>& cmd, int64_t timeout_seconds);
  // These return the URL of the runtime's streaming server for one session.
  Result<std::string> Exec(const cri::ExecRequest& request);
  Result<std::string> Attach(const cri::AttachRequest& request);
  Result<std::string> PortForward(const std::string& sandbox_id, const std::vector<int32_t>& ports);

  // ---- stats ----
  Result<cri::ContainerStats> ContainerStats(const std::string& container_id);
  Result<std::vector<cri::ContainerStats>> ListContainerStats(
      const cri::ContainerStatsFilter& filter = {});

  // ---- images ----
  Result<std::vector<cri::Image>> ListImages();
  // The image, or nullopt when the runtime does not have it (not an error).
  Result<std::optional<cri::Image>> ImageStatus(const std::string& image);
  // Pulls an image; returns the image ref (the runtime's image id). auth and sandbox_config
  // may be null.
  Result<std::string> PullImage(const std::string& image, const cri::AuthConfig* auth = nullptr,
                                const cri::PodSandboxConfig* sandbox_config = nullptr);
  mk8s::Status RemoveImage(const std::string& image);  // idempotent
  Result<cri::ImageFsInfoResponse> ImageFsInfo();

 private:
  struct Stubs;  // gRPC channel and stubs; defined in cri_client.cc
  CriClient(std::string socket_path, std::unique_ptr<Stubs> stubs);

  const std::string socket_path_;
  const std::unique_ptr<Stubs> stubs_;
};

}  // namespace mk8s::runtime
