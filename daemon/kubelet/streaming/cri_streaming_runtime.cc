#include "kubelet/streaming/cri_streaming_runtime.h"

#include <algorithm>

#include "runtime/cri_client.h"

namespace mk8s::kubelet {
namespace {

namespace cri = ::runtime::v1;

class CriStreamingRuntime final : public StreamingRuntime {
 public:
  explicit CriStreamingRuntime(runtime::CriClient* cri) : cri_(cri) {}

  Result<std::string> ExecUrl(const StreamTarget& target) override {
    Result<std::string> id = FindContainer(target);
    if (!id.ok()) return id.status();
    cri::ExecRequest request;
    request.set_container_id(*id);
    for (const auto& arg : target.command) request.add_cmd(arg);
    request.set_tty(target.tty);
    request.set_stdin(target.in);
    request.set_stdout(target.out);
    request.set_stderr(target.err && !target.tty);  // a tty merges stderr into stdout
    return cri_->Exec(request);
  }

  Result<std::string> AttachUrl(const StreamTarget& target) override {
    Result<std::string> id = FindContainer(target);
    if (!id.ok()) return id.status();
    cri::AttachRequest request;
    request.set_container_id(*id);
    request.set_tty(target.tty);
    request.set_stdin(target.in);
    request.set_stdout(target.out);
    request.set_stderr(target.err && !target.tty);
    return cri_->Attach(request);
  }

  Result<std::string> PortForwardUrl(const StreamTarget& target) override {
    cri::PodSandboxFilter filter;
    filter.mutable_state()->set_state(cri::SANDBOX_READY);
    auto& labels = *filter.mutable_label_selector();
    labels["io.kubernetes.pod.namespace"] = target.namespace_;
    labels["io.kubernetes.pod.name"] = target.pod;
    if (!target.uid.empty()) labels["io.kubernetes.pod.uid"] = target.uid;
    Result<std::vector<cri::PodSandbox>> sandboxes = cri_->ListPodSandbox(filter);
    if (!sandboxes.ok()) return sandboxes.status();
    if (sandboxes->empty()) {
      return Status(Code::kNotFound, "pod " + target.namespace_ + "/" + target.pod +
                                         " has no running sandbox on this node");
    }
    const auto newest = std::max_element(sandboxes->begin(), sandboxes->end(),
                                         [](const cri::PodSandbox& a, const cri::PodSandbox& b) {
                                           return a.created_at() < b.created_at();
                                         });
    return cri_->PortForward(newest->id(), {});
  }

 private:
  Result<std::string> FindContainer(const StreamTarget& target) {
    cri::ContainerFilter filter;
    filter.mutable_state()->set_state(cri::CONTAINER_RUNNING);
    auto& labels = *filter.mutable_label_selector();
    labels["io.kubernetes.pod.namespace"] = target.namespace_;
    labels["io.kubernetes.pod.name"] = target.pod;
    labels["io.kubernetes.container.name"] = target.container;
    if (!target.uid.empty()) labels["io.kubernetes.pod.uid"] = target.uid;
    Result<std::vector<cri::Container>> containers = cri_->ListContainers(filter);
    if (!containers.ok()) return containers.status();
    if (containers->empty()) {
      return Status(Code::kNotFound, "container " + target.container + " of pod " +
                                         target.namespace_ + "/" + target.pod +
                                         " is not running on this node");
    }
    const auto newest = std::max_element(containers->begin(), containers->end(),
                                         [](const cri::Container& a, const cri::Container& b) {
                                           return a.created_at() < b.created_at();
                                         });
    return newest->id();
  }

  runtime::CriClient* const cri_;
};

}  // namespace

std::shared_ptr<StreamingRuntime> MakeCriStreamingRuntime(runtime::CriClient* cri) {
  return std::make_shared<CriStreamingRuntime>(cri);
}

}  // namespace mk8s::kubelet
