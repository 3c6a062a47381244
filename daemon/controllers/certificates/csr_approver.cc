#include "controllers/certificates/csr_approver.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "common/time_format.h"
#include "controllers/certificates/csr_util.h"
#include "pki/csr.h"
#include "pki/encoding.h"

namespace mk8s::controllers {

using nlohmann::json;

namespace {
constexpr std::chrono::milliseconds kNodeWait{1000};
}  // namespace

void CsrApprover::Setup() {
  csrs_ = context_.informers->For(csr::kCsrs);
  nodes_ = context_.informers->For(client::kNodes);
  csrs_->AddEventHandler(
      {[this](const client::ObjectPtr& o) { EnqueueObject(o); },
       [this](const client::ObjectPtr&, const client::ObjectPtr& o) { EnqueueObject(o); },
       nullptr});
}

Status CsrApprover::Reconcile(const std::string& name) {
  client::ObjectPtr cached = csrs_->Get(name);
  if (!cached) return Status::Ok();
  const json& object = *cached;
  if (object.value("/spec/signerName"_json_pointer, std::string()) != pki::kKubeletServingSigner ||
      csr::HasCondition(object, "Approved") || csr::HasCondition(object, "Denied")) {
    return Status::Ok();
  }
  const std::string username = object.value("/spec/username"_json_pointer, std::string());
  const std::string node_name = pki::NodeNameOfUser(username);
  if (node_name.empty()) return Status::Ok();  // not a node's own request: a human decides

  auto decide = [&](const std::string& type, const std::string& reason,
                    const std::string& message) -> Status {
    const json patch = {
        {"status", csr::WithCondition(object, type, reason, message, FormatRfc3339(WallNow()))}};
    auto patched = api().Patch(csr::kCsrs, "", name, client::PatchType::kMerge, patch, "approval");
    if (!patched.ok()) {
      if (client::IsNotFound(patched.error())) return Status::Ok();
      return patched.status();
    }
    spdlog::info("csr-approving: {} {} of {}: {}", type == "Approved" ? "approved" : "denied", name,
                 username, message);
    return Status::Ok();
  };

  const std::optional<std::string> pem =
      pki::Base64Decode(object.value("/spec/request"_json_pointer, std::string()));
  if (!pem) return decide("Denied", "MalformedRequest", "spec.request is not base64");
  Result<pki::CsrInfo> info = pki::ParseCsr(*pem);
  if (!info.ok()) return decide("Denied", "MalformedRequest", info.status().message());
  if (Status rules =
          pki::CheckKubeletServingCsr(*info, csr::Strings(object, "/spec/usages"_json_pointer));
      !rules.ok()) {
    return decide("Denied", "SignerRulesBroken", rules.message());
  }
  client::ObjectPtr node = nodes_->Get(node_name);
  if (!node) {
    EnqueueAfter(name, kNodeWait);  // registration may still be on its way
    return Status::Ok();
  }
  std::vector<std::string> names = {node_name};
  const json addresses = (*node).value("/status/addresses"_json_pointer, json::array());
  if (addresses.is_array()) {
    for (const json& address : addresses) {
      if (address.is_object() && address.contains("address") && address["address"].is_string()) {
        names.push_back(address["address"].get<std::string>());
      }
    }
  }
  const std::vector<std::string> groups = csr::Strings(object, "/spec/groups"_json_pointer);
  if (Status own = pki::CheckCsrFromItsNode(*info, username, groups, names); !own.ok()) {
    if (names.size() == 1) {  // no addresses published yet: wait for the first node status
      EnqueueAfter(name, kNodeWait);
      return Status::Ok();
    }
    return decide("Denied", "NotTheNodesOwn", own.message());
  }
  return decide("Approved", "AutoApproved",
                "Auto approving kubelet serving certificate of node " + node_name);
}

}  // namespace mk8s::controllers
