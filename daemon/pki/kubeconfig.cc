// Kubeconfig rendering. Strings are emitted as YAML double-quoted scalars (JSON escapes), so any
// name or URL is safe; the base64 data fields need no quoting.
#include <cstdio>
#include <string>

#include "pki/cluster_pki.h"
#include "pki/encoding.h"

namespace mk8s::pki {
namespace {

std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\x%02x", static_cast<unsigned char>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string Render(std::string_view server_url, std::string_view ca_pem,
                   std::string_view cluster_name, std::string_view user_name,
                   std::string_view context_name, const std::string& user_fields) {
  std::string y;
  y += "apiVersion: v1\n";
  y += "kind: Config\n";
  y += "clusters:\n";
  y += "- cluster:\n";
  y += "    certificate-authority-data: " + Base64Encode(ca_pem) + "\n";
  y += "    server: " + Quote(server_url) + "\n";
  y += "  name: " + Quote(cluster_name) + "\n";
  y += "contexts:\n";
  y += "- context:\n";
  y += "    cluster: " + Quote(cluster_name) + "\n";
  y += "    user: " + Quote(user_name) + "\n";
  y += "  name: " + Quote(context_name) + "\n";
  y += "current-context: " + Quote(context_name) + "\n";
  y += "preferences: {}\n";
  y += "users:\n";
  y += "- name: " + Quote(user_name) + "\n";
  y += "  user:\n";
  y += user_fields;
  return y;
}

}  // namespace

std::string Kubeconfig(std::string_view server_url, std::string_view ca_pem,
                       std::string_view client_cert_pem, std::string_view client_key_pem,
                       std::string_view cluster_name, std::string_view user_name,
                       std::string_view context_name) {
  std::string user = "    client-certificate-data: " + Base64Encode(client_cert_pem) + "\n" +
                     "    client-key-data: " + Base64Encode(client_key_pem) + "\n";
  return Render(server_url, ca_pem, cluster_name, user_name, context_name, user);
}

std::string KubeconfigWithToken(std::string_view server_url, std::string_view ca_pem,
                                std::string_view token, std::string_view cluster_name,
                                std::string_view user_name, std::string_view context_name) {
  std::string user = "    token: " + Quote(token) + "\n";
  return Render(server_url, ca_pem, cluster_name, user_name, context_name, user);
}

}  // namespace mk8s::pki
