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

// Looks through the containers in place (no copies of the lists: this runs on every pod create).
bool MountsTokenPath(const json& spec) {
  for (const char* list : {"initContainers", "containers"}) {
    auto containers = spec.find(list);
    if (containers == spec.end() || !containers->is_array()) continue;
    for (const json& container : *containers) {
      if (!container.is_object()) continue;
      auto mounts = container.find("volumeMounts");
      if (mounts == container.end() || !mounts->is_array()) continue;
      for (const json& mount : *mounts) {
        if (!mount.is_object()) continue;
        auto path = mount.find("mountPath");
        if (path != mount.end() && path->is_string() && *path == kTokenMountPath) return true;
      }
    }
  }
  return false;
}

// The projected volume's sources, built once (copying a tree is cheaper than building it).
const json& TokenVolumeSources() {
  static const json sources = json::array(
      {{{"serviceAccountToken", {{"expirationSeconds", 3607}, {"path", "token"}}}},
       {{"configMap", {{"name", "kube-root-ca.crt"},
                       {"items", json::array({{{"key", "ca.crt"}, {"path", "ca.crt"}}})}}}},
       {{"downwardAPI",
         {{"items", json::array({{{"path", "namespace"},
                                  {"fieldRef", {{"apiVersion", "v1"},
                                                {"fieldPath", "metadata.namespace"}}}}})}}}}});
  return sources;
}

}  // namespace

void MountServiceAccountToken(json& spec) {
  if (!spec.is_object()) return;
  if (auto automount = spec.find("automountServiceAccountToken");
      automount != spec.end() && automount->is_boolean() && !automount->get<bool>()) {
    return;
  }
  if (MountsTokenPath(spec)) return;
  const std::string name = "kube-api-access-" + RandomSuffix();
  json& volumes = spec["volumes"];
  if (!volumes.is_array()) volumes = json::array();
  json volume = json::object();
  volume["name"] = name;
  json& projected = volume["projected"];
  projected["defaultMode"] = 420;
  projected["sources"] = TokenVolumeSources();
  volumes.push_back(std::move(volume));
  for (const char* list : {"initContainers", "containers"}) {
    auto containers = spec.find(list);
    if (containers == spec.end() || !containers->is_array()) continue;
    for (json& container : *containers) {
      if (!container.is_object()) continue;
      json& mounts = container["volumeMounts"];
      if (!mounts.is_array()) mounts = json::array();
      json mount = json::object();
      mount["mountPath"] = kTokenMountPath;
      mount["name"] = name;
      mount["readOnly"] = true;
      mounts.push_back(std::move(mount));
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

bool ValidateLabelSelector(const json& selector, const std::string& path,
                           std::vector<StatusCause>* causes) {
  const size_t before = causes->size();
  auto expressions = selector.find("matchExpressions");
  if (expressions == selector.end() || !expressions->is_array()) return true;
  for (size_t i = 0; i < expressions->size(); ++i) {
    const json& expression = (*expressions)[i];
    const std::string at = path + ".matchExpressions[" + std::to_string(i) + "]";
    const std::string op = expression.is_object() ? expression.value("operator", "") : "";
    auto values = expression.is_object() ? expression.find("values") : expression.end();
    const size_t count = values != expression.end() && values->is_array() ? values->size() : 0;
    if (op == "In" || op == "NotIn") {
      if (count == 0) {
        causes->push_back({"FieldValueRequired",
                           "Required value: must be specified when `operator` is 'In' or 'NotIn'",
                           at + ".values"});
      }
    } else if (op == "Exists" || op == "DoesNotExist") {
      if (count != 0) {
        causes->push_back({"FieldValueForbidden",
                           "Forbidden: may not be specified when `operator` is 'Exists' or "
                           "'DoesNotExist'",
                           at + ".values"});
      }
    } else {
      causes->push_back({"FieldValueInvalid",
                         "Invalid value: \"" + op + "\": not a valid selector operator",
                         at + ".operator"});
    }
  }
  return causes->size() == before;
}

}  // namespace mk8s::apiserver
