#include "apiserver/registry/certificates_admission.h"

#include <chrono>
#include <set>

#include "apiserver/registry/object_meta.h"
#include "apiserver/registry/rest_storage.h"
#include "pki/certificates.h"
#include "pki/csr.h"
#include "pki/encoding.h"

namespace mk8s::apiserver {
namespace {

using nlohmann::json;

constexpr const char* kKind = "CertificateSigningRequest";
constexpr const char* kGroup = "certificates.k8s.io";

const std::set<std::string>& KnownUsages() {
  static const std::set<std::string> usages = {"signing",
                                               "digital signature",
                                               "content commitment",
                                               "key encipherment",
                                               "key agreement",
                                               "data encipherment",
                                               "cert sign",
                                               "crl sign",
                                               "encipher only",
                                               "decipher only",
                                               "any",
                                               "server auth",
                                               "client auth",
                                               "code signing",
                                               "email protection",
                                               "s/mime",
                                               "ipsec end system",
                                               "ipsec tunnel",
                                               "ipsec user",
                                               "timestamping",
                                               "ocsp signing",
                                               "microsoft sgc",
                                               "netscape sgc"};
  return usages;
}

// "<domain>/<path>": a DNS-ish domain with a dot, then a non-empty path.
bool ValidSignerName(const std::string& name) {
  const size_t slash = name.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 >= name.size()) return false;
  const std::string domain = name.substr(0, slash);
  if (domain.find('.') == std::string::npos || domain.size() > 253) return false;
  for (char c : domain) {
    if (!(std::islower(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '.'))
      return false;
  }
  for (char c : name.substr(slash + 1)) {
    if (c <= ' ' || c >= 127) return false;
  }
  return name.size() <= 571;
}

// The PEM behind a JSON bytes field (base64), or nullopt.
std::optional<std::string> Bytes(const json& object, const json::json_pointer& pointer) {
  if (!object.contains(pointer) || !object.at(pointer).is_string()) return std::nullopt;
  return pki::Base64Decode(object.at(pointer).get<std::string>());
}

bool IsApprovalType(const std::string& type) { return type == "Approved" || type == "Denied"; }

// Condition list rules shared by /status and /approval; fills missing times with `now`.
void CheckConditions(json& status, const json& old_status, const std::string& now,
                     std::vector<StatusCause>* causes) {
  if (!status.is_object()) status = json::object();
  json& conditions = status["conditions"];
  if (conditions.is_null()) conditions = json::array();
  if (!conditions.is_array()) {
    causes->push_back({"FieldValueInvalid", "must be a list", "status.conditions"});
    return;
  }
  std::set<std::string> seen;
  for (size_t i = 0; i < conditions.size(); ++i) {
    json& condition = conditions[i];
    const std::string path = "status.conditions[" + std::to_string(i) + "]";
    if (!condition.is_object()) {
      causes->push_back({"FieldValueInvalid", "must be an object", path});
      continue;
    }
    const std::string type = condition.value("type", "");
    if (type.empty()) causes->push_back({"FieldValueRequired", "Required value", path + ".type"});
    if (!seen.insert(type).second) {
      causes->push_back(
          {"FieldValueDuplicate", "Duplicate value: \"" + type + "\"", path + ".type"});
    }
    const std::string value = condition.value("status", "");
    if (value.empty()) condition["status"] = "True";
    if (value != "" && value != "True" && value != "False" && value != "Unknown") {
      causes->push_back(
          {"FieldValueNotSupported", "Unsupported value: \"" + value + "\"", path + ".status"});
    }
    if ((IsApprovalType(type) || type == "Failed") && condition["status"] != "True") {
      causes->push_back({"FieldValueNotSupported",
                         "Unsupported value: \"" + value + "\": " + type + " must be True",
                         path + ".status"});
    }
    if (!condition.contains("lastUpdateTime")) condition["lastUpdateTime"] = now;
    if (!condition.contains("lastTransitionTime")) condition["lastTransitionTime"] = now;
  }
  if (seen.count("Approved") && seen.count("Denied")) {
    causes->push_back({"FieldValueInvalid", "Approved and Denied conditions are mutually exclusive",
                       "status.conditions"});
  }
  for (const json& condition : old_status.value("conditions", json::array())) {
    const std::string type = condition.is_object() ? condition.value("type", "") : "";
    if ((IsApprovalType(type) || type == "Failed") && !seen.count(type)) {
      causes->push_back({"FieldValueForbidden",
                         "updates may not remove a condition of type \"" + type + "\"",
                         "status.conditions"});
    }
  }
}

}  // namespace

std::optional<ApiError> AdmitCsrCreate(json& csr, const UserInfo* requester) {
  const std::string name = csr["metadata"].value("name", "");
  if (requester == nullptr || requester->name.empty()) {
    return ApiError::Forbidden("certificatesigningrequests \"" + name +
                               "\" is forbidden: the requester is unknown");
  }
  json& spec = csr["spec"];
  if (!spec.is_object()) spec = json::object();
  // Who asked is the API server's to say, never the client's.
  spec["username"] = requester->name;
  if (requester->uid.empty())
    spec.erase("uid");
  else
    spec["uid"] = requester->uid;
  spec["groups"] = requester->groups;
  spec.erase("extra");
  csr["status"] = json::object();

  std::vector<StatusCause> causes;
  const std::string signer = spec.value("signerName", "");
  if (signer.empty()) {
    causes.push_back({"FieldValueRequired", "Required value", "spec.signerName"});
  } else if (signer == "kubernetes.io/legacy-unknown") {
    causes.push_back(
        {"FieldValueNotSupported",
         "Unsupported value: \"" + signer + "\": not allowed in certificates.k8s.io/v1",
         "spec.signerName"});
  } else if (!ValidSignerName(signer)) {
    causes.push_back({"FieldValueInvalid",
                      "Invalid value: \"" + signer +
                          "\": must be a fully qualified domain and "
                          "path of the form 'example.com/signer-name'",
                      "spec.signerName"});
  }
  std::vector<std::string> usages;
  if (!spec.contains("usages") || !spec["usages"].is_array() || spec["usages"].empty()) {
    causes.push_back({"FieldValueRequired", "Required value", "spec.usages"});
  } else {
    for (size_t i = 0; i < spec["usages"].size(); ++i) {
      const json& usage = spec["usages"][i];
      if (!usage.is_string() || !KnownUsages().count(usage.get<std::string>())) {
        causes.push_back({"FieldValueNotSupported", "Unsupported value: " + usage.dump(),
                          "spec.usages[" + std::to_string(i) + "]"});
      } else {
        usages.push_back(usage.get<std::string>());
      }
    }
  }
  if (spec.contains("expirationSeconds")) {
    const json& seconds = spec["expirationSeconds"];
    if (!seconds.is_number_integer() || seconds.get<int64_t>() < 600) {
      causes.push_back({"FieldValueInvalid",
                        "Invalid value: " + seconds.dump() +
                            ": may not specify a duration less "
                            "than 600 seconds (10 minutes)",
                        "spec.expirationSeconds"});
    }
  }
  std::optional<pki::CsrInfo> info;
  const std::optional<std::string> pem = Bytes(csr, "/spec/request"_json_pointer);
  if (!spec.contains("request")) {
    causes.push_back({"FieldValueRequired", "Required value", "spec.request"});
  } else if (!pem) {
    causes.push_back({"FieldValueInvalid", "Invalid value: not base64", "spec.request"});
  } else if (Result<pki::CsrInfo> parsed = pki::ParseCsr(*pem); !parsed.ok()) {
    causes.push_back(
        {"FieldValueInvalid", "Invalid value: " + parsed.status().message(), "spec.request"});
  } else {
    info = std::move(*parsed);
  }
  if (!causes.empty()) return ApiError::Invalid(kGroup, kKind, name, std::move(causes));

  if (signer == pki::kKubeletServingSigner) {
    if (Status rules = pki::CheckKubeletServingCsr(*info, usages); !rules.ok()) {
      return ApiError::Invalid(
          kGroup, kKind, name,
          {{"FieldValueInvalid", "Invalid value: " + rules.message() + " (signer " + signer + ")",
            "spec.request"}});
    }
    // A node asks for its own serving certificate only.
    const std::string node = pki::NodeNameOfUser(requester->name);
    if (!node.empty() && info->common_name != requester->name) {
      return ApiError::Forbidden(
          "certificatesigningrequests \"" + name + "\" is forbidden: node \"" + node +
          "\" may not request a certificate for \"" + info->common_name + "\"");
    }
  }
  return std::nullopt;
}

std::optional<ApiError> AdmitCsrUpdate(json& csr, const json& old, const std::string& subresource) {
  const std::string name = csr["metadata"].value("name", "");
  // The spec never changes after creation.
  if (old.contains("spec")) csr["spec"] = old["spec"];
  const json old_status = old.value("status", json::object());
  if (subresource.empty()) {
    csr["status"] = old_status;
    return std::nullopt;
  }
  if (!csr.contains("status") || !csr["status"].is_object()) csr["status"] = json::object();
  json& status = csr["status"];
  const std::string now = FormatTime(std::chrono::system_clock::now());
  std::vector<StatusCause> causes;
  if (subresource == "approval") {
    // Only the conditions change here; the certificate stays as it was.
    if (old_status.contains("certificate")) {
      status["certificate"] = old_status["certificate"];
    } else {
      status.erase("certificate");
    }
  } else if (subresource == "status") {
    // Approved/Denied come from /approval only: keep the stored ones, drop new ones.
    json kept = json::array();
    for (const json& condition : old_status.value("conditions", json::array())) {
      if (condition.is_object() && IsApprovalType(condition.value("type", "")))
        kept.push_back(condition);
    }
    if (status.contains("conditions") && status["conditions"].is_array()) {
      for (const json& condition : status["conditions"]) {
        if (!condition.is_object() || !IsApprovalType(condition.value("type", ""))) {
          kept.push_back(condition);
        }
      }
    }
    status["conditions"] = std::move(kept);
    const std::string old_cert = old_status.value("certificate", "");
    const std::string new_cert = status.value("certificate", "");
    if (!old_cert.empty() && new_cert != old_cert) {
      causes.push_back({"FieldValueForbidden",
                        "updates may not modify existing certificate content",
                        "status.certificate"});
    } else if (!new_cert.empty() && old_cert.empty()) {
      const std::optional<std::string> pem = pki::Base64Decode(new_cert);
      if (!pem || pem->find("-----BEGIN CERTIFICATE-----") == std::string::npos ||
          !pki::ParseCertificate(*pem).ok()) {
        causes.push_back({"FieldValueInvalid",
                          "Invalid value: must contain at least one CERTIFICATE PEM block",
                          "status.certificate"});
      }
    }
  }
  CheckConditions(status, old_status, now, &causes);
  if (!causes.empty()) return ApiError::Invalid(kGroup, kKind, name, std::move(causes));
  return std::nullopt;
}

}  // namespace mk8s::apiserver
