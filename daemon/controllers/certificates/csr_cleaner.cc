#include "controllers/certificates/csr_cleaner.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "common/time_format.h"
#include "controllers/certificates/csr_util.h"
#include "pki/certificates.h"
#include "pki/encoding.h"

namespace mk8s::controllers {

using nlohmann::json;
using TimePoint = std::chrono::system_clock::time_point;

namespace {

// The time the condition `type` (status True) was last updated, if the request has it.
std::optional<TimePoint> ConditionTime(const json& csr, const std::string& type) {
  const json conditions = csr.value("/status/conditions"_json_pointer, json::array());
  if (!conditions.is_array()) return std::nullopt;
  for (const json& c : conditions) {
    if (!c.is_object() || c.value("type", "") != type || c.value("status", "True") != "True") {
      continue;
    }
    for (const char* field : {"lastUpdateTime", "lastTransitionTime"}) {
      if (c.contains(field) && c[field].is_string()) {
        if (auto at = ParseRfc3339(c[field].get<std::string>())) return at;
      }
    }
  }
  return std::nullopt;
}

// The notAfter of the issued certificate, if there is a parsable one.
std::optional<TimePoint> CertificateExpiry(const json& csr) {
  const std::string encoded = csr.value("/status/certificate"_json_pointer, std::string());
  if (encoded.empty()) return std::nullopt;
  const std::optional<std::string> pem = pki::Base64Decode(encoded);
  if (!pem) return std::nullopt;
  Result<pki::CertInfo> info = pki::ParseCertificate(*pem);
  if (!info.ok()) return std::nullopt;
  return info->not_after;
}

// CsrDeletionDeadline's rules; may throw json::exception on fields of unexpected types.
std::optional<TimePoint> DeadlineOf(const json& csr) {
  std::optional<TimePoint> deadline;
  auto earliest = [&deadline](std::optional<TimePoint> candidate) {
    if (candidate && (!deadline || *candidate < *deadline)) deadline = candidate;
  };
  bool decided = false;
  for (const char* type : {"Approved", "Denied", "Failed"}) {
    if (std::optional<TimePoint> at = ConditionTime(csr, type)) {
      earliest(*at + CsrCleaner::kDecidedExpiration);
      decided = true;
    } else if (csr::HasCondition(csr, type)) {
      decided = true;  // decided, with no readable time: only the other rules apply
    }
  }
  if (!decided) {
    const std::string created =
        csr.value("/metadata/creationTimestamp"_json_pointer, std::string());
    if (auto at = ParseRfc3339(created)) earliest(*at + CsrCleaner::kPendingExpiration);
  }
  earliest(CertificateExpiry(csr));
  return deadline;
}

}  // namespace

std::optional<TimePoint> CsrDeletionDeadline(const json& csr) {
  if (!csr.is_object()) return std::nullopt;
  try {
    return DeadlineOf(csr);
  } catch (const json::exception&) {  // a field of an unexpected type: leave the request alone
    return std::nullopt;
  }
}

void CsrCleaner::Setup() {
  csrs_ = context_.informers->For(csr::kCsrs);
  csrs_->AddEventHandler(
      {[this](const client::ObjectPtr& o) { EnqueueObject(o); },
       [this](const client::ObjectPtr&, const client::ObjectPtr& o) { EnqueueObject(o); },
       nullptr});
}

Status CsrCleaner::Reconcile(const std::string& name) {
  client::ObjectPtr cached = csrs_->Get(name);
  if (!cached) return Status::Ok();
  const json& object = *cached;
  if (object.contains("/metadata/deletionTimestamp"_json_pointer)) return Status::Ok();
  const std::optional<TimePoint> deadline = CsrDeletionDeadline(object);
  if (!deadline) return Status::Ok();
  const TimePoint now = WallNow();
  if (now < *deadline) {
    // Again at the deadline (a little after, so the comparison above holds by then).
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - now);
    EnqueueAfter(name, wait + std::chrono::milliseconds(10));
    return Status::Ok();
  }
  client::DeleteOptions options;
  options.precondition_uid = object.value("/metadata/uid"_json_pointer, std::string());
  auto deleted = api().Delete(csr::kCsrs, "", name, options);
  if (!deleted.ok()) {
    // Gone already, or re-created under the same name (another UID): nothing to do here.
    if (client::IsNotFound(deleted.error()) || client::IsConflict(deleted.error())) {
      return Status::Ok();
    }
    return deleted.status();
  }
  spdlog::info("csr-cleaner: deleted {} (past its deadline)", name);
  return Status::Ok();
}

}  // namespace mk8s::controllers
