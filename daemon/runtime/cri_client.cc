#include "runtime/cri_client.h"

#include <grpc/support/log.h>
#include <grpcpp/grpcpp.h>

#include <cstdlib>
#include <utility>

#include "cri/api.grpc.pb.h"

namespace mk8s::runtime {

struct CriClient::Stubs {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<cri::RuntimeService::Stub> runtime;
  std::unique_ptr<cri::ImageService::Stub> images;
};

namespace {

using Clock = std::chrono::system_clock;

// gRPC's own logging would print every dial failure while containerd restarts; the client
// reports failures through its Status values instead. GRPC_VERBOSITY turns it back on.
void QuietGrpcLogging() {
  static const bool once = [] {
    if (std::getenv("GRPC_VERBOSITY") == nullptr) gpr_set_log_function([](gpr_log_func_args*) {});
    return true;
  }();
  (void)once;
}

Code MapCode(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::NOT_FOUND:
      return Code::kNotFound;
    case grpc::StatusCode::ALREADY_EXISTS:
      return Code::kAlreadyExists;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return Code::kDeadlineExceeded;
    case grpc::StatusCode::UNAVAILABLE:
      return Code::kUnavailable;
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::OUT_OF_RANGE:
      return Code::kInvalidArgument;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return Code::kResourceExhausted;
    default:
      return Code::kInternal;
  }
}

// Runs one RPC through `call(context)` with `deadline`, mapping failure to an mk8s Status.
template <typename Call>
mk8s::Status Invoke(const char* rpc, std::chrono::milliseconds deadline, Call&& call) {
  grpc::ClientContext context;
  context.set_deadline(Clock::now() + deadline);
  const grpc::Status status = call(&context);
  if (status.ok()) return {};
  std::string message = status.error_message();
  if (message.empty())
    message = "gRPC code " + std::to_string(static_cast<int>(status.error_code()));
  return mk8s::Status(MapCode(status.error_code()), std::string("CRI ") + rpc + ": " + message);
}

constexpr std::chrono::milliseconds Short() { return CriClient::kShortDeadline; }
constexpr std::chrono::milliseconds Long() { return CriClient::kLongDeadline; }

}  // namespace

Result<std::unique_ptr<CriClient>> CriClient::Connect(const std::string& socket_path) {
  if (socket_path.empty()) {
    return mk8s::Status(Code::kInvalidArgument, "CRI: empty runtime socket path");
  }
  QuietGrpcLogging();
  grpc::ChannelArguments args;
  // containerd restarts under the supervisor: reconnect quickly once it is back.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetMaxReceiveMessageSize(-1);  // ExecSync output may be up to 2 x 16 MiB
  auto stubs = std::make_unique<Stubs>();
  stubs->channel =
      grpc::CreateCustomChannel("unix:" + socket_path, grpc::InsecureChannelCredentials(), args);
  stubs->runtime = cri::RuntimeService::NewStub(stubs->channel);
  stubs->images = cri::ImageService::NewStub(stubs->channel);
  return std::unique_ptr<CriClient>(new CriClient(socket_path, std::move(stubs)));
}

CriClient::CriClient(std::string socket_path, std::unique_ptr<Stubs> stubs)
    : socket_path_(std::move(socket_path)), stubs_(std::move(stubs)) {}

CriClient::~CriClient() = default;

// ---- runtime ----

Result<cri::VersionResponse> CriClient::Version() {
  cri::VersionRequest request;
  request.set_version("v1");
  cri::VersionResponse response;
  auto st = Invoke("Version", Short(), [&](grpc::ClientContext* c) {
    return stubs_->runtime->Version(c, request, &response);
  });
  if (!st.ok()) return st;
  return response;
}

Result<cri::StatusResponse> CriClient::Status(bool verbose) {
  cri::StatusRequest request;
  request.set_verbose(verbose);
  cri::StatusResponse response;
  auto st = Invoke("Status", Short(), [&](grpc::ClientContext* c) {
    return stubs_->runtime->Status(c, request, &response);
  });
  if (!st.ok()) return st;
  return response;
}

bool CriClient::ConditionTrue(const std::string& condition) {
  auto status = Status();
  if (!status.ok()) return false;
  for (const auto& c : status->status().conditions()) {
    if (c.type() == condition) return c.status();
  }
  return false;
}

mk8s::Status CriClient::UpdateRuntimeConfig(const std::string& pod_cidr) {
  cri::UpdateRuntimeConfigRequest request;
  request.mutable_runtime_config()->mutable_network_config()->set_pod_cidr(pod_cidr);
  cri::UpdateRuntimeConfigResponse response;
  return Invoke("UpdateRuntimeConfig", Short(), [&](grpc::ClientContext* c) {
    return stubs_->runtime->UpdateRuntimeConfig(c, request, &response);
  });
}

// ---- pod sandboxes ----

Result<std::string> CriClient::RunPodSandbox(const cri::PodSandboxConfig& config,
                                             const std::string& handler) {
  cri::RunPodSandboxRequest request;
  *request.mutable_config() = config;
  request.set_runtime_handler(handler);
  cri::RunPodSandboxResponse response;
  auto st = Invoke("RunPodSandbox", Long(), [&](grpc::ClientContext* c) {
    return stubs_->runtime->RunPodSandbox(c, request, &response);
  });
  if (!st.ok()) return st;
  return response.pod_sandbox_id();
}

mk8s::Status CriClient::StopPodSandbox(const std::string& sandbox_id) {
  cri::StopPodSandboxRequest request;
  request.set_pod_sandbox_id(sandbox_id);
  cri::StopPodSandboxResponse response;
  return Invoke("StopPodSandbox", Long(), [&](grpc::ClientContext* c) {
    return stubs_->runtime->StopPodSandbox(c, request, &response);
  });
}

mk8s::Status CriClient::RemovePodSandbox(const std::string& sandbox_id) {
  cri::RemovePodSandboxRequest request;
  request.set_pod_sandbox_id(sandbox_id);
  cri::RemovePodSandboxResponse response;
  return Invoke("RemovePodSandbox", Long(), [&](grpc::ClientContext* c) {
    return stubs_->runtime->RemovePodSandbox(c, request, &response);
  });
}

Result<cri::PodSandboxStatusResponse> CriClient::PodSandboxStatus(const std::string& sandbox_id,
                                                                  bool verbose) {
  cri::PodSandboxStatusRequest request;
  request.set_pod_sandbox_id(sandbox_id);
  request.set_verbose(verbose);
  cri::PodSandboxStatusResponse response;
  auto st = Invoke("PodSandboxStatus", Short(), [&](grpc::ClientContext* c) {
    return stubs_->runtime->PodSandboxStatus(c, request, &response);
  });
  if (!st.ok()) return st;
  return response;
}

Result<std::vector<cri::PodSandbox>> CriClient::ListPodSandbox(
    const cri::PodSandboxFilter& filter) {
  cri::ListPodSandboxRequest request;
  *request.mutable_filter() = filter;
  cri::ListPodSandboxResponse response;
  auto st = Invoke("ListPodSandbox", Short(), [&](grpc::ClientContext* c) {
    return stubs_->runtime->ListPodSandbox(c, request, &response);
  });
  if (!st.ok()) return st;
  return std::vector<cri::PodSandbox>(response.items().begin(), response.items().end());
}

// ---- containers ----

Result<std::string> CriClient::CreateContainer(const std::string& sandbox_id,
                                               const cri::ContainerConfig& config,
                                               const cri::PodSandboxConfig& sandbox_config) {
  cri::CreateContainerRequest request;
  request.set_pod_sandbox_id(sandbox_id);
  *request.mutable_config() = config;
  *request.mutable_sandbox_config() = sandbox_config;
  cri::CreateContainerResponse response;
  auto st = Invoke("CreateContainer", Long(), [&](grpc::ClientContext* c) {
    return stubs_->runtime->CreateContainer(c, request, &response);
  });
  if (!st.ok()) return st;
  return response.container_id();
}

mk8s::Status CriClient::StartContainer(const std::string& container_id) {
  cri::StartContainerRequest request;
  request.set_container_id(container_id);
  cri::StartContainerResponse response;
  return Invoke("StartContainer", Long(), [&](grpc::ClientContext* c) {
    return stubs_->runtime->StartContainer(c, request, &response);
  });
}

mk8s::Status CriClient::StopContainer(const std::string& container_id, int64_t timeout_seconds) {
  if (timeout_seconds < 0) timeout_seconds = 0;
  cri::StopContainerRequest request;
  request.set_container_id(container_id);
  request.set_timeout(timeout_seconds);
  cri::StopContainerResponse response;
  return Invoke("StopContainer", Long() + std::chrono::seconds(timeout_seconds),
                [&](grpc::ClientContext* c) {
                  return stubs_->runtime->StopContainer(c, request, &response);
                });
}

mk8s::Status CriClient::RemoveContainer(const std::string& container_id) {
  cri::RemoveContainerRequest request;
  request.set_container_id(container_id);
  cri::RemoveContainerResponse response;
  return Invoke("RemoveContainer", Long(), [&](grpc::ClientContext* c) {
    return stubs_->runtime->RemoveContainer(c, request, &response);
  });
}

Result<std::vector<cri::Container>> CriClient::ListContainers(const cri::ContainerFilter& filter) {
  cri::ListContainersRequest request;
  *request.mutable_filter() = filter;
  cri::ListContainersResponse response;
  auto st = Invoke("ListContainers", Short(), [&](grpc::ClientContext* c) {
    return stubs_->runtime->ListContainers(c, request, &response);
  });
  if (!st.ok()) return st;
  return std::vector<cri::Container>(response.containers().begin(), response.containers().end());
}

Result<cri::ContainerStatus> CriClient::ContainerStatus(const std::string& container_id) {
  cri::ContainerStatusRequest request;
  request.set_container_id(container_id);
  cri::ContainerStatusResponse response;
  auto st = Invoke("ContainerStatus", Short(), [&](grpc::ClientContext* c) {
    return stubs_->runtime->ContainerStatus(c, request, &response);
  });
  if (!st.ok()) return st;
  return std::move(*response.mutable_status());
}

mk8s::Status CriClient::UpdateContainerResources(const std::string& container_id,
                                                 const cri::LinuxContainerResources& resources) {
  cri::UpdateContainerResourcesRequest request;
  request.set_container_id(container_id);
  *request.mutable_linux() = resources;
  cri::UpdateContainerResourcesResponse response;
  return Invoke("UpdateContainerResources", Long(), [&](grpc::ClientContext* c) {
    return stubs_->runtime->UpdateContainerResources(c, request, &response);
  });
}

mk8s::Status CriClient::ReopenContainerLog(const std::string& container_id) {
  cri::ReopenContainerLogRequest request;
  request.set_container_id(container_id);
  cri::ReopenContainerLogResponse response;
  return Invoke("ReopenContainerLog", Short(), [&](grpc::ClientContext* c) {
    return stubs_->runtime->ReopenContainerLog(c, request, &response);
  });
}

// ---- exec, attach, port-forward ----

Result<ExecSyncResult> CriClient::ExecSync(const std::string& container_id,
                                           const std::vector<std::string>& cmd,
                                           int64_t timeout_seconds) {
  if (cmd.empty()) return mk8s::Status(Code::kInvalidArgument, "CRI ExecSync: empty command");
  if (timeout_seconds < 0) timeout_seconds = 0;
  cri::ExecSyncRequest request;
  request.set_container_id(container_id);
  for (const auto& arg : cmd) request.add_cmd(arg);
  request.set_timeout(timeout_seconds);
  cri::ExecSyncResponse response;
  const std::chrono::milliseconds deadline =
      timeout_seconds == 0 ? Long() : Short() + std::chrono::seconds(timeout_seconds);
  auto st = Invoke("ExecSync", deadline, [&](grpc::ClientContext* c) {
    return stubs_->runtime->ExecSync(c, request, &response);
  });
  if (!st.ok()) return st;
  ExecSyncResult result;
  result.stdout_data = std::move(*response.mutable_stdout());
  result.stderr_data = std::move(*response.mutable_stderr());
  result.exit_code = response.exit_code();
  return result;
}

Result<std::string> CriClient::Exec(const cri::ExecRequest& request) {
  cri::ExecResponse response;
  auto st = Invoke("Exec", Short(), [&](grpc::ClientContext* c) {
    return stubs_->runtime->Exec(c, request, &response);
  });
  if (!st.ok()) return st;
  return response.url();
}

Result<std::string> CriClient::Attach(const cri::AttachRequest& request) {
  cri::AttachResponse response;
  auto st = Invoke("Attach", Short(), [&](grpc::ClientContext* c) {
    return stubs_->runtime->Attach(c, request, &response);
  });
  if (!st.ok()) return st;
  return response.url();
}

Result<std::string> CriClient::PortForward(const std::string& sandbox_id,
                                           const std::vector<int32_t>& ports) {
  cri::PortForwardRequest request;
  request.set_pod_sandbox_id(sandbox_id);
  for (int32_t port : ports) request.add_port(port);
  cri::PortForwardResponse response;
  auto st = Invoke("PortForward", Short(), [&](grpc::ClientContext* c) {
    return stubs_->runtime->PortForward(c, request, &response);
  });
  if (!st.ok()) return st;
  return response.url();
}

// ---- stats ----

Result<cri::ContainerStats> CriClient::ContainerStats(const std::string& container_id) {
  cri::ContainerStatsRequest request;
  request.set_container_id(container_id);
  cri::ContainerStatsResponse response;
  auto st = Invoke("ContainerStats", Short(), [&](grpc::ClientContext* c) {
    return stubs_->runtime->ContainerStats(c, request, &response);
  });
  if (!st.ok()) return st;
  return std::move(*response.mutable_stats());
}

Result<std::vector<cri::ContainerStats>> CriClient::ListContainerStats(
    const cri::ContainerStatsFilter& filter) {
  cri::ListContainerStatsRequest request;
  *request.mutable_filter() = filter;
  cri::ListContainerStatsResponse response;
  auto st = Invoke("ListContainerStats", Short(), [&](grpc::ClientContext* c) {
    return stubs_->runtime->ListContainerStats(c, request, &response);
  });
  if (!st.ok()) return st;
  return std::vector<cri::ContainerStats>(response.stats().begin(), response.stats().end());
}

// ---- images ----

Result<std::vector<cri::Image>> CriClient::ListImages() {
  cri::ListImagesRequest request;
  cri::ListImagesResponse response;
  auto st = Invoke("ListImages", Short(), [&](grpc::ClientContext* c) {
    return stubs_->images->ListImages(c, request, &response);
  });
  if (!st.ok()) return st;
  return std::vector<cri::Image>(response.images().begin(), response.images().end());
}

Result<std::optional<cri::Image>> CriClient::ImageStatus(const std::string& image) {
  cri::ImageStatusRequest request;
  request.mutable_image()->set_image(image);
  cri::ImageStatusResponse response;
  auto st = Invoke("ImageStatus", Short(), [&](grpc::ClientContext* c) {
    return stubs_->images->ImageStatus(c, request, &response);
  });
  if (!st.ok()) return st;
  if (!response.has_image()) return std::optional<cri::Image>();
  return std::optional<cri::Image>(std::move(*response.mutable_image()));
}

Result<std::string> CriClient::PullImage(const std::string& image, const cri::AuthConfig* auth,
                                         const cri::PodSandboxConfig* sandbox_config) {
  cri::PullImageRequest request;
  request.mutable_image()->set_image(image);
  if (auth != nullptr) *request.mutable_auth() = *auth;
  if (sandbox_config != nullptr) *request.mutable_sandbox_config() = *sandbox_config;
  cri::PullImageResponse response;
  auto st = Invoke("PullImage", kPullDeadline, [&](grpc::ClientContext* c) {
    return stubs_->images->PullImage(c, request, &response);
  });
  if (!st.ok()) return st;
  return response.image_ref();
}

mk8s::Status CriClient::RemoveImage(const std::string& image) {
  cri::RemoveImageRequest request;
  request.mutable_image()->set_image(image);
  cri::RemoveImageResponse response;
  return Invoke("RemoveImage", Long(), [&](grpc::ClientContext* c) {
    return stubs_->images->RemoveImage(c, request, &response);
  });
}

Result<cri::ImageFsInfoResponse> CriClient::ImageFsInfo() {
  cri::ImageFsInfoRequest request;
  cri::ImageFsInfoResponse response;
  auto st = Invoke("ImageFsInfo", Short(), [&](grpc::ClientContext* c) {
    return stubs_->images->ImageFsInfo(c, request, &response);
  });
  if (!st.ok()) return st;
  return response;
}

}  // namespace mk8s::runtime
