// Small helpers shared by the CSR approver and signer (internal to this folder).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "client/resources.h"

namespace mk8s::controllers::csr {

inline const client::ResourceRef kCsrs{"certificates.k8s.io", "v1", "certificatesigningrequests",
                                       false};

// True when status.conditions holds `type` with status True.
inline bool HasCondition(const nlohmann::json& csr, const std::string& type) {
  const nlohmann::json conditions =
      csr.value("/status/conditions"_json_pointer, nlohmann::json::array());
  if (!conditions.is_array()) return false;
  for (const nlohmann::json& c : conditions) {
    if (c.is_object() && c.value("type", "") == type && c.value("status", "True") == "True")
      return true;
  }
  return false;
}

inline std::vector<std::string> Strings(const nlohmann::json& csr,
                                        const nlohmann::json::json_pointer& pointer) {
  std::vector<std::string> out;
  if (!csr.contains(pointer) || !csr.at(pointer).is_array()) return out;
  for (const nlohmann::json& v : csr.at(pointer)) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

// The status with one more condition (type, reason, message; status True) at `now`.
inline nlohmann::json WithCondition(const nlohmann::json& csr, const std::string& type,
                                    const std::string& reason, const std::string& message,
                                    const std::string& now) {
  nlohmann::json status = csr.value("status", nlohmann::json::object());
  if (!status.is_object()) status = nlohmann::json::object();
  if (!status.contains("conditions") || !status["conditions"].is_array()) {
    status["conditions"] = nlohmann::json::array();
  }
  status["conditions"].push_back({{"type", type},
                                  {"status", "True"},
                                  {"reason", reason},
                                  {"message", message},
                                  {"lastUpdateTime", now},
                                  {"lastTransitionTime", now}});
  return status;
}

}  // namespace mk8s::controllers::csr
