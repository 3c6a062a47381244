#include "controllers/certificates/csr_signer.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/time_format.h"
#include "controllers/certificates/csr_util.h"
#include "pki/certificates.h"
#include "pki/csr.h"
#include "pki/encoding.h"

namespace mk8s::controllers {

using nlohmann::json;

namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return in ? text.str() : std::string();
}

}  // namespace

void CsrSigner::Setup() {
  if (!context_.cluster_signing_cert_file.empty() && !context_.cluster_signing_key_file.empty()) {
    ca_cert_pem_ = ReadAll(context_.cluster_signing_cert_file);
    ca_key_pem_ = ReadAll(context_.cluster_signing_key_file);
  }
  if (ca_cert_pem_.empty() || ca_key_pem_.empty()) {
    spdlog::info("csr-signing: no cluster signing CA here; kubelet-serving requests stay unsigned");
    return;
  }
  csrs_ = context_.informers->For(csr::kCsrs);
  csrs_->AddEventHandler(
      {[this](const client::ObjectPtr& o) { EnqueueObject(o); },
       [this](const client::ObjectPtr&, const client::ObjectPtr& o) { EnqueueObject(o); },
       nullptr});
}

Status CsrSigner::Fail(const json& object, const std::string& reason, const std::string& message) {
  json updated = object;
  updated["status"] =
      csr::WithCondition(object, "Failed", reason, message, FormatRfc3339(WallNow()));
  auto written = api().UpdateStatus(csr::kCsrs, updated);
  if (!written.ok() && !client::IsNotFound(written.error())) return written.status();
  spdlog::warn("csr-signing: {} failed: {}", object.value("/metadata/name"_json_pointer, ""),
               message);
  return Status::Ok();
}

Status CsrSigner::Reconcile(const std::string& name) {
  if (csrs_ == nullptr) return Status::Ok();
  client::ObjectPtr cached = csrs_->Get(name);
  if (!cached) return Status::Ok();
  const json& object = *cached;
  if (object.value("/spec/signerName"_json_pointer, std::string()) != pki::kKubeletServingSigner ||
      !csr::HasCondition(object, "Approved") || csr::HasCondition(object, "Denied") ||
      csr::HasCondition(object, "Failed") ||
      !object.value("/status/certificate"_json_pointer, std::string()).empty()) {
    return Status::Ok();
  }
  const std::optional<std::string> pem =
      pki::Base64Decode(object.value("/spec/request"_json_pointer, std::string()));
  if (!pem) return Fail(object, "SignerValidationFailure", "spec.request is not base64");
  Result<pki::CsrInfo> info = pki::ParseCsr(*pem);
  if (!info.ok()) return Fail(object, "SignerValidationFailure", info.status().message());
  if (Status rules =
          pki::CheckKubeletServingCsr(*info, csr::Strings(object, "/spec/usages"_json_pointer));
      !rules.ok()) {
    return Fail(object, "SignerValidationFailure", rules.message());
  }
  pki::ServingCertOptions options;
  options.common_name = info->common_name;
  options.organizations = info->organizations;
  options.dns_names = info->dns_names;
  options.ip_addresses = info->ip_addresses;
  const int64_t wanted = object.value("/spec/expirationSeconds"_json_pointer, int64_t{0});
  if (wanted >= 600) {
    options.validity = std::min(pki::kLeafValidity, std::chrono::seconds(wanted));
  }
  Result<std::string> cert = pki::IssueServingCertForKey(pki::KeyPair{ca_cert_pem_, ca_key_pem_},
                                                         info->public_key_pem, options);
  if (!cert.ok()) return Fail(object, "SignerValidationFailure", cert.status().message());
  json updated = object;
  if (!updated.contains("status") || !updated["status"].is_object())
    updated["status"] = json::object();
  updated["status"]["certificate"] = pki::Base64Encode(*cert);
  auto written = api().UpdateStatus(csr::kCsrs, updated);
  if (!written.ok()) {
    if (client::IsNotFound(written.error())) return Status::Ok();
    return written.status();  // a conflict retries on the fresh object
  }
  spdlog::info("csr-signing: issued {} for {}", name, info->common_name);
  return Status::Ok();
}

}  // namespace mk8s::controllers
