#include "apiserver/registry/core_admission.h"

#include <random>

#include "pki/encoding.h"

namespace mk8s::apiserver {
namespace {

using nlohmann::json;

constexpr const char* kTokenMountPath = "/var/run/secrets/kubernetes.io/serviceaccount";

// Upstream's name suffix alphabet (no vowels, no look-alikes).
std::string RandomSuffix() {
  static constexpr char kAlphabet[] = "bcdfghjklmnpqrstvwxz2456789";
  thread_local std::mt19937 random{std::random_device{}()};
  std::uniform_int_distribution<size_t> pick(0, sizeof(kAlphabet) - 2);
  std::string suffix;
  for (int i = 0; i < 5; ++i) suffix += kAlphabet[pick(random)];
  return suffix;
}

bool MountsTokenPath(const json& spec) {
  for (const char* list : {"initContainers", "containers"}) {
    for (const json& container : spec.value(list, json::array())) {
      for (const json& mount : container.value("volumeMounts", json::array())) {
        if (mount.value("mountPath", "") == kTokenMountPath) return true;
      }
    }
  }
  return false;
}

}  // namespace

void MountServiceAccountToken(json& spec) {
  if (!spec.is_object() || !spec.value("automountServiceAccountToken", true)) return;
  if (MountsTokenPath(spec)) return;
  const std::string name = "kube-api-access-" + RandomSuffix();
  json sources = json::array();
  sources.push_back({{"serviceAccountToken", {{"expirationSeconds", 3607}, {"path", "token"}}}});
  sources.push_back({{"configMap", {{"name", "kube-root-ca.crt"},
                                    {"items", json::array({{{"key", "ca.crt"}, {"path", "ca.crt"}}})}}}});
  sources.push_back(
      {{"downwardAPI",
        {{"items", json::array({{{"path", "namespace"},
                                 {"fieldRef", {{"apiVersion", "v1"},
                                               {"fieldPath", "metadata.namespace"}}}}})}}}});
  json& volumes = spec["volumes"];
  if (!volumes.is_array()) volumes = json::array();
  volumes.push_back({{"name", name}, {"projected", {{"defaultMode", 420}, {"sources", sources}}}});
  for (const char* list : {"initContainers", "containers"}) {
    if (!spec.contains(list) || !spec[list].is_array()) continue;
    for (json& container : spec[list]) {
      json& mounts = container["volumeMounts"];
      if (!mounts.is_array()) mounts = json::array();
      mounts.push_back({{"name", name}, {"readOnly", true}, {"mountPath", kTokenMountPath}});
    }
  }
}

void FoldSecretStringData(json& secret, std::vector<StatusCause>* causes) {
  if (!secret.contains("stringData")) return;
  const json string_data = secret["stringData"];
  secret.erase("stringData");
  if (string_data.is_null()) return;
  if (!string_data.is_object()) {
    causes->push_back({"FieldValueInvalid", "must be a map of strings", "stringData"});
    return;
  }
  json& data = secret["data"];
  if (!data.is_object()) data = json::object();
  for (const auto& [key, value] : string_data.items()) {
    if (!value.is_string()) {
      causes->push_back({"FieldValueInvalid", "must be a string", "stringData[" + key + "]"});
      continue;
    }
    data[key] = pki::Base64Encode(value.get<std::string>());
  }
}

}  // namespace mk8s::apiserver
