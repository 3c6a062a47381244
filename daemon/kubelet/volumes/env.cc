#include "kubelet/volumes/env.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <optional>

#include <nlohmann/json.hpp>

#include "kubelet/volumes/downward_api.h"
#include "kubelet/volumes/sources.h"

namespace mk8s::kubelet {
namespace {

using nlohmann::json;
using Env = std::vector<std::pair<std::string, std::string>>;

// An environment under construction: unique names in first-definition order.
class OrderedEnv {
 public:
  void Set(const std::string& name, std::string value) {
    auto it = index_.find(name);
    if (it != index_.end()) {
      entries_[it->second].second = std::move(value);
      return;
    }
    index_[name] = entries_.size();
    entries_.emplace_back(name, std::move(value));
  }
  const std::string* Find(const std::string& name) const {
    auto it = index_.find(name);
    return it == index_.end() ? nullptr : &entries_[it->second].second;
  }
  const Env& entries() const { return entries_; }

 private:
  Env entries_;
  std::map<std::string, size_t> index_;
};

// "my-svc" -> "MY_SVC" (upstream's makeEnvVariableName).
std::string EnvName(const std::string& s) {
  std::string out;
  for (char c : s) {
    out.push_back(c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  }
  return out;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string HostPort(const std::string& ip, int64_t port) {
  const bool v6 = ip.find(':') != std::string::npos;
  return (v6 ? "[" + ip + "]" : ip) + ":" + std::to_string(port);
}

// Upstream's envvars.FromServices for one service.
void AddServiceVars(const json& service, OrderedEnv* env) {
  const json spec = service.value("spec", json::object());
  const std::string ip = spec.value("clusterIP", "");
  const json ports = spec.value("ports", json::array());
  const std::string prefix = EnvName(service.value("/metadata/name"_json_pointer, std::string()));
  env->Set(prefix + "_SERVICE_HOST", ip);
  if (!ports.is_array() || ports.empty()) return;
  const std::string port_var = prefix + "_SERVICE_PORT";
  env->Set(port_var, std::to_string(ports[0].value("port", int64_t{0})));
  for (const json& port : ports) {
    const std::string name = port.value("name", "");
    if (!name.empty())
      env->Set(port_var + "_" + EnvName(name), std::to_string(port.value("port", int64_t{0})));
  }
  for (size_t i = 0; i < ports.size(); ++i) {
    const json& port = ports[i];
    std::string protocol = port.value("protocol", "");
    if (protocol.empty()) protocol = "TCP";
    const int64_t number = port.value("port", int64_t{0});
    const std::string url = Lower(protocol) + "://" + HostPort(ip, number);
    if (i == 0) env->Set(prefix + "_PORT", url);
    std::string upper = protocol;
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    const std::string port_prefix = prefix + "_PORT_" + std::to_string(number) + "_" + upper;
    env->Set(port_prefix, url);
    env->Set(port_prefix + "_PROTO", Lower(protocol));
    env->Set(port_prefix + "_PORT", std::to_string(number));
    env->Set(port_prefix + "_ADDR", ip);
  }
}

bool HasClusterIp(const json& service) {
  const std::string ip = service.value("/spec/clusterIP"_json_pointer, std::string());
  return !ip.empty() && ip != "None";
}

// The Service variables (upstream's getServiceEnvVarMap), services sorted by name.
OrderedEnv ServiceEnv(const std::string& ns, bool links,
                      const std::vector<client::ObjectPtr>& services) {
  std::map<std::string, const json*> chosen;
  for (const client::ObjectPtr& ptr : services) {
    if (!ptr || !ptr->is_object() || !HasClusterIp(*ptr)) continue;
    const std::string service_ns = ptr->value("/metadata/namespace"_json_pointer, std::string());
    const std::string name = ptr->value("/metadata/name"_json_pointer, std::string());
    if (service_ns == "default" && name == "kubernetes") {
      chosen.emplace(name, ptr.get());  // a same-namespace "kubernetes" Service wins
    } else if (service_ns == ns && links) {
      chosen[name] = ptr.get();
    }
  }
  OrderedEnv env;
  for (const auto& [name, service] : chosen) AddServiceVars(*service, &env);
  return env;
}

// Upstream's IsEnvVarName: [-._a-zA-Z][-._a-zA-Z0-9]*
bool ValidEnvName(const std::string& name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(name[i]);
    const bool ok =
        std::isalpha(c) || c == '-' || c == '.' || c == '_' || (i > 0 && std::isdigit(c));
    if (!ok) return false;
  }
  return true;
}

// ConfigMaps and Secrets read once per ResolveEnv call.
class SourceCache {
 public:
  SourceCache(client::Client& client, std::string ns) : client_(client), ns_(std::move(ns)) {}
  // nullopt value: the object does not exist.
  Result<const std::optional<volumes::DataMap>*> Get(const std::string& kind,
                                                     const std::string& name) {
    const std::string key = kind + "/" + name;
    auto it = cache_.find(key);
    if (it != cache_.end()) return &it->second;
    auto object = volumes::GetObject(client_, kind, ns_, name);
    if (!object.ok()) return object.status();
    std::optional<volumes::DataMap> data;
    if (object->has_value()) {
      if (kind == "secret") {
        auto decoded = volumes::SecretData(**object);
        if (!decoded.ok()) return decoded.status();
        data = std::move(*decoded);
      } else {
        // envFrom and configMapKeyRef read a ConfigMap's data only (not binaryData), as upstream.
        volumes::DataMap text;
        const json fields = (**object).value("data", json::object());
        if (fields.is_object()) {
          for (const auto& [k, v] : fields.items()) {
            text[k] = v.is_string() ? v.get<std::string>() : v.dump();
          }
        }
        data = std::move(text);
      }
    }
    return &(cache_[key] = std::move(data));
  }

 private:
  client::Client& client_;
  std::string ns_;
  std::map<std::string, std::optional<volumes::DataMap>> cache_;
};

std::string Display(const std::string& kind) { return kind == "secret" ? "Secret" : "ConfigMap"; }

std::vector<std::string> IpList(const std::string& first, const json& pod, const char* field) {
  std::vector<std::string> out;
  if (!first.empty()) out.push_back(first);
  if (pod.contains("status") && pod["status"].is_object() && pod["status"].contains(field) &&
      pod["status"][field].is_array()) {
    for (const json& entry : pod["status"][field]) {
      const std::string ip = entry.is_object() ? entry.value("ip", "") : "";
      if (!ip.empty() && std::find(out.begin(), out.end(), ip) == out.end()) out.push_back(ip);
    }
  }
  return out;
}

std::string Join(const std::vector<std::string>& parts) {
  std::string out;
  for (const std::string& part : parts) out += (out.empty() ? "" : ",") + part;
  return out;
}

Result<std::string> FieldRefValue(const json& pod, const json& ref, const std::string& pod_ip,
                                  const std::string& host_ip) {
  const std::string path = ref.value("fieldPath", "");
  const std::string version = ref.value("apiVersion", "");
  if (path == "spec.nodeName") return pod.value("/spec/nodeName"_json_pointer, std::string());
  if (path == "spec.serviceAccountName") {
    return pod.value("/spec/serviceAccountName"_json_pointer, std::string());
  }
  const std::string pod_ip_or_status =
      pod_ip.empty() ? pod.value("/status/podIP"_json_pointer, std::string()) : pod_ip;
  const std::string host_ip_or_status =
      host_ip.empty() ? pod.value("/status/hostIP"_json_pointer, std::string()) : host_ip;
  if (path == "status.podIP") return pod_ip_or_status;
  if (path == "status.podIPs") return Join(IpList(pod_ip_or_status, pod, "podIPs"));
  if (path == "status.hostIP") return host_ip_or_status;
  if (path == "status.hostIPs") return Join(IpList(host_ip_or_status, pod, "hostIPs"));
  return volumes::ExtractMetadataField(pod, version, path);
}

}  // namespace

std::string ExpandVariables(const std::string& input,
                            const std::function<bool(const std::string&, std::string*)>& lookup) {
  std::string out;
  size_t checkpoint = 0;
  for (size_t cursor = 0; cursor < input.size(); ++cursor) {
    if (input[cursor] != '$' || cursor + 1 >= input.size()) continue;
    out.append(input, checkpoint, cursor - checkpoint);
    const char next = input[cursor + 1];
    size_t advance = 1;
    if (next == '$') {
      out.push_back('$');  // escaped operator
    } else if (next == '(') {
      const size_t close = input.find(')', cursor + 2);
      if (close == std::string::npos) {
        out += "$(";  // unterminated: kept as written
      } else {
        const std::string name = input.substr(cursor + 2, close - cursor - 2);
        std::string value;
        out += lookup(name, &value) ? value : "$(" + name + ")";
        advance = close - cursor;
      }
    } else {
      out.push_back('$');
      out.push_back(next);
    }
    cursor += advance;
    checkpoint = cursor + 1;
  }
  out.append(input, std::min(checkpoint, input.size()), std::string::npos);
  return out;
}

Result<Env> ResolveEnv(const json& pod, const json& container, client::Client& client,
                       const std::vector<client::ObjectPtr>& services, const std::string& pod_ip,
                       const std::string& host_ip, const EnvOptions& options) {
  if (!pod.is_object() || !container.is_object()) {
    return Status(Code::kInvalidArgument, "pod and container must be objects");
  }
  const std::string ns = pod.value("/metadata/namespace"_json_pointer, std::string());
  const std::string container_name = container.value("name", "");
  const bool links = pod.value("/spec/enableServiceLinks"_json_pointer, true);
  OrderedEnv service_env = ServiceEnv(ns, links, services);
  OrderedEnv defined;  // envFrom + env
  SourceCache sources(client, ns);
  auto lookup = [&](const std::string& name, std::string* value) {
    const std::string* found = defined.Find(name);
    if (found == nullptr) found = service_env.Find(name);
    if (found == nullptr) return false;
    *value = *found;
    return true;
  };

  const json env_from = container.value("envFrom", json::array());
  for (const json& from : env_from.is_array() ? env_from : json::array()) {
    if (!from.is_object()) continue;
    const bool is_secret = from.contains("secretRef");
    const char* ref_field = is_secret ? "secretRef" : "configMapRef";
    if (!from.contains(ref_field) || !from[ref_field].is_object()) continue;
    const json& ref = from[ref_field];
    const std::string kind = is_secret ? "secret" : "configmap";
    const std::string name = ref.value("name", "");
    auto data = sources.Get(kind, name);
    if (!data.ok()) return Status(data.status().code(), "envFrom: " + data.status().message());
    if (!(*data)->has_value()) {
      if (ref.value("optional", false)) continue;
      return Status(Code::kNotFound, "envFrom: " + kind + " \"" + name + "\" not found");
    }
    const std::string prefix = from.value("prefix", "");
    std::vector<std::string> invalid;
    for (const auto& [key, value] : **(*data)) {
      const std::string var = prefix + key;
      if (!ValidEnvName(var)) {
        invalid.push_back(var);
        continue;
      }
      defined.Set(var, value);
    }
    if (!invalid.empty() && options.warnings != nullptr) {
      std::string keys;
      for (const std::string& key : invalid) keys += (keys.empty() ? "" : ", ") + key;
      options.warnings->push_back("Keys [" + keys + "] from the EnvFrom " +
                                  (is_secret ? "secret " : "configMap ") + ns + "/" + name +
                                  " were skipped since they are considered invalid environment "
                                  "variable names.");
    }
  }

  const json env = container.value("env", json::array());
  for (const json& var : env.is_array() ? env : json::array()) {
    if (!var.is_object()) continue;
    const std::string name = var.value("name", "");
    auto fail = [&](const Status& cause) {
      return Status(cause.code(), "env \"" + name + "\": " + cause.message());
    };
    std::string value = var.contains("value") && var["value"].is_string()
                            ? var["value"].get<std::string>()
                            : std::string();
    if (!value.empty()) {
      value = ExpandVariables(value, lookup);
    } else if (var.contains("valueFrom") && var["valueFrom"].is_object()) {
      const json& from = var["valueFrom"];
      if (from.contains("fieldRef") && from["fieldRef"].is_object()) {
        auto field = FieldRefValue(pod, from["fieldRef"], pod_ip, host_ip);
        if (!field.ok()) return fail(field.status());
        value = std::move(*field);
      } else if (from.contains("resourceFieldRef") && from["resourceFieldRef"].is_object()) {
        auto resource = volumes::ExtractResourceField(pod, from["resourceFieldRef"], container_name,
                                                      options.node_allocatable);
        if (!resource.ok()) return fail(resource.status());
        value = std::move(*resource);
      } else if (from.contains("configMapKeyRef") || from.contains("secretKeyRef")) {
        const bool is_secret = from.contains("secretKeyRef");
        const json& ref = from[is_secret ? "secretKeyRef" : "configMapKeyRef"];
        const std::string kind = is_secret ? "secret" : "configmap";
        const std::string object = ref.is_object() ? ref.value("name", "") : "";
        const std::string key = ref.is_object() ? ref.value("key", "") : "";
        const bool optional = ref.is_object() && ref.value("optional", false);
        auto data = sources.Get(kind, object);
        if (!data.ok()) return fail(data.status());
        if (!(*data)->has_value()) {
          if (optional) continue;
          return fail(Status(Code::kNotFound, kind + " \"" + object + "\" not found"));
        }
        auto found = (*data)->value().find(key);
        if (found == (*data)->value().end()) {
          if (optional) continue;
          return fail(Status(Code::kNotFound, "couldn't find key " + key + " in " + Display(kind) +
                                                  " " + ns + "/" + object));
        }
        value = found->second;
      }
    }
    defined.Set(name, std::move(value));
  }

  Env out;
  for (const auto& [name, value] : service_env.entries()) {
    if (defined.Find(name) == nullptr) out.emplace_back(name, value);
  }
  for (const auto& entry : defined.entries()) out.push_back(entry);
  return out;
}

}  // namespace mk8s::kubelet
