// LoadKubeconfig: yaml-cpp stays out of the transport TU.
#include <fstream>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "client/https_transport.h"

namespace mk8s::client {
namespace {

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status(Code::kNotFound, "cannot read " + path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

Result<std::string> Base64Decode(const std::string& text) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
  };
  std::string out;
  uint32_t bits = 0;
  int count = 0;
  for (char c : text) {
    if (c == '=' || c == '\n' || c == '\r' || c == ' ') continue;
    const int v = value(c);
    if (v < 0) return Status(Code::kInvalidArgument, "invalid base64 in kubeconfig");
    bits = (bits << 6) | static_cast<uint32_t>(v);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out += static_cast<char>((bits >> count) & 0xff);
    }
  }
  return out;
}

YAML::Node FindNamed(const YAML::Node& list, const std::string& name, const char* field) {
  if (!list || !list.IsSequence()) return YAML::Node();
  for (const YAML::Node& entry : list) {
    if (entry["name"] && entry["name"].as<std::string>() == name) return entry[field];
  }
  return YAML::Node();
}

// `data_key` (base64, inline) or `file_key` (a path); "" if neither.
Result<std::string> Material(const YAML::Node& node, const char* data_key, const char* file_key) {
  if (node[data_key]) return Base64Decode(node[data_key].as<std::string>());
  if (node[file_key]) return ReadFile(node[file_key].as<std::string>());
  return std::string();
}

}  // namespace

Result<HttpsConfig> LoadKubeconfig(const std::string& path) {
  Result<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  try {
    YAML::Node root = YAML::Load(*text);
    std::string context_name = root["current-context"] ? root["current-context"].as<std::string>() : "";
    YAML::Node context = FindNamed(root["contexts"], context_name, "context");
    if (!context && root["contexts"] && root["contexts"].IsSequence() && root["contexts"].size() > 0) {
      context = root["contexts"][0]["context"];
    }
    if (!context) return Status(Code::kInvalidArgument, path + ": no context to use");
    YAML::Node cluster = FindNamed(root["clusters"], context["cluster"].as<std::string>(""), "cluster");
    YAML::Node user = FindNamed(root["users"], context["user"].as<std::string>(""), "user");
    if (!cluster || !cluster["server"]) {
      return Status(Code::kInvalidArgument, path + ": the context's cluster has no server");
    }
    HttpsConfig config;
    config.server = cluster["server"].as<std::string>();
    config.insecure_skip_verify =
        cluster["insecure-skip-tls-verify"] && cluster["insecure-skip-tls-verify"].as<bool>();
    Result<std::string> ca = Material(cluster, "certificate-authority-data", "certificate-authority");
    if (!ca.ok()) return ca.status();
    config.ca_pem = *ca;
    if (user) {
      Result<std::string> cert = Material(user, "client-certificate-data", "client-certificate");
      if (!cert.ok()) return cert.status();
      Result<std::string> key = Material(user, "client-key-data", "client-key");
      if (!key.ok()) return key.status();
      config.client_cert_pem = *cert;
      config.client_key_pem = *key;
      if (user["token"]) config.bearer_token = user["token"].as<std::string>();
      else if (user["tokenFile"]) {
        Result<std::string> token = ReadFile(user["tokenFile"].as<std::string>());
        if (!token.ok()) return token.status();
        config.bearer_token = *token;
        while (!config.bearer_token.empty() && isspace(config.bearer_token.back())) {
          config.bearer_token.pop_back();
        }
      }
    }
    return config;
  } catch (const YAML::Exception& e) {
    return Status(Code::kInvalidArgument, path + ": not a valid kubeconfig: " + e.what());
  }
}

}  // namespace mk8s::client
