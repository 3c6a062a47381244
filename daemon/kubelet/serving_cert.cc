#include "kubelet/serving_cert.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "client/client.h"
#include "pki/certificates.h"
#include "pki/csr.h"
#include "pki/encoding.h"

namespace mk8s::kubelet {
namespace {

using nlohmann::json;

const client::ResourceRef kCsrs{"certificates.k8s.io", "v1", "certificatesigningrequests", false};

bool IsIp(const std::string& text) {
  unsigned char buffer[16];
  return inet_pton(AF_INET, text.c_str(), buffer) == 1 ||
         inet_pton(AF_INET6, text.c_str(), buffer) == 1;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return in ? text.str() : std::string();
}

// Writes through a temporary file created with `mode` and a rename.
Status WriteFile(const std::string& path, const std::string& data, mode_t mode) {
  const std::string temporary = path + ".tmp";
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return Status(Code::kInternal, "cannot create " + temporary);
  bool ok = ::fchmod(fd, mode) == 0;
  size_t written = 0;
  while (ok && written < data.size()) {
    const ssize_t n = ::write(fd, data.data() + written, data.size() - written);
    if (n <= 0)
      ok = false;
    else
      written += static_cast<size_t>(n);
  }
  ok = ::fsync(fd) == 0 && ok;
  ok = ::close(fd) == 0 && ok;
  if (!ok || ::rename(temporary.c_str(), path.c_str()) != 0) {
    ::unlink(temporary.c_str());
    return Status(Code::kInternal, "cannot write " + path);
  }
  return Status::Ok();
}

bool HasCondition(const json& csr, const std::string& type, std::string* message) {
  for (const json& c : csr.value("/status/conditions"_json_pointer, json::array())) {
    if (c.is_object() && c.value("type", "") == type && c.value("status", "True") == "True") {
      *message = c.value("reason", "") + ": " + c.value("message", "");
      return true;
    }
  }
  return false;
}

}  // namespace

void WantedServingSans(const std::string& node_name, const std::vector<std::string>& node_ips,
                       std::vector<std::string>* dns, std::vector<std::string>* ips) {
  auto add = [](std::vector<std::string>* list, const std::string& value) {
    if (!value.empty() && std::find(list->begin(), list->end(), value) == list->end())
      list->push_back(value);
  };
  add(IsIp(node_name) ? ips : dns, node_name);
  for (const std::string& ip : node_ips) add(ips, ip);
}

bool ServingCertUsable(const std::string& cert_pem, const std::string& key_pem,
                       const std::string& ca_pem, const std::vector<std::string>& dns,
                       const std::vector<std::string>& ips,
                       std::chrono::system_clock::time_point now) {
  if (cert_pem.empty() || key_pem.empty() || ca_pem.empty()) return false;
  auto match = pki::CertMatchesKey(cert_pem, key_pem);
  if (!match.ok() || !*match) return false;
  if (!pki::VerifyCertificate(cert_pem, ca_pem, now, pki::Usage::kServer).ok()) return false;
  auto info = pki::ParseCertificate(cert_pem);
  if (!info.ok()) return false;
  const auto lifetime = info->not_after - info->not_before;
  if (info->not_after - now < lifetime / 5) return false;  // renew in the last fifth
  auto same = [](std::vector<std::string> a, std::vector<std::string> b) {
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    return a == b;
  };
  return same(info->dns_names, dns) && same(info->ip_addresses, ips);
}

Result<pki::CertFiles> EnsureServingCertFromCluster(client::Client& client,
                                                    const ServingCertBootstrapOptions& options,
                                                    const std::function<bool()>& stopping) {
  const pki::CertFiles files{options.pki_dir + "/" + pki::kKubeletCert,
                             options.pki_dir + "/" + pki::kKubeletKey, options.pki_dir + "/ca.crt"};
  if (options.cluster_ca_pem.empty()) {
    return Status(Code::kInvalidArgument, "no cluster CA in the kubeconfig");
  }
  std::error_code error;
  std::filesystem::create_directories(options.pki_dir, error);
  ::chmod(options.pki_dir.c_str(), 0700);
  if (ReadAll(files.ca_file) != options.cluster_ca_pem) {
    if (Status s = WriteFile(files.ca_file, options.cluster_ca_pem, 0644); !s.ok()) return s;
  }
  std::vector<std::string> dns, ips;
  WantedServingSans(options.node_name, options.node_ips, &dns, &ips);
  std::string key = ReadAll(files.key_file);
  if (ServingCertUsable(ReadAll(files.cert_file), key, options.cluster_ca_pem, dns, ips,
                        std::chrono::system_clock::now())) {
    return files;
  }
  if (key.empty() || !pki::PublicKeyPem(key).ok()) {
    auto generated = pki::GenerateEcKeyPem();
    if (!generated.ok()) return generated.status();
    key = std::move(*generated);
    if (Status s = WriteFile(files.key_file, key, 0600); !s.ok()) return s;
  }
  pki::CsrOptions csr_options;
  csr_options.common_name = std::string(pki::kNodeUserPrefix) + options.node_name;
  csr_options.organizations = {pki::kNodesGroup};
  csr_options.dns_names = dns;
  csr_options.ip_addresses = ips;
  auto pem = pki::CreateCsr(key, csr_options);
  if (!pem.ok()) return pem.status();
  const json request = {{"apiVersion", "certificates.k8s.io/v1"},
                        {"kind", "CertificateSigningRequest"},
                        {"metadata", {{"generateName", "csr-"}}},
                        {"spec",
                         {{"request", pki::Base64Encode(*pem)},
                          {"signerName", pki::kKubeletServingSigner},
                          {"usages", {"digital signature", "server auth"}}}}};
  auto created = client.Create(kCsrs, "", request);
  if (!created.ok()) {
    return Status(created.status().code() == Code::kInvalidArgument ? Code::kInvalidArgument
                                                                    : Code::kUnavailable,
                  "creating the serving certificate request: " + created.error().ToString());
  }
  const std::string name = (*created).value("/metadata/name"_json_pointer, std::string());
  spdlog::info("kubelet: requested a serving certificate for node {} (csr {})", options.node_name,
               name);
  const auto deadline = std::chrono::steady_clock::now() + options.wait_for_issue;
  json csr = *created;
  while (true) {
    std::string why;
    if (HasCondition(csr, "Denied", &why) || HasCondition(csr, "Failed", &why)) {
      return Status(Code::kInvalidArgument, "certificate request " + name + " refused: " + why);
    }
    const std::string issued = csr.value("/status/certificate"_json_pointer, std::string());
    if (!issued.empty()) {
      const std::optional<std::string> cert = pki::Base64Decode(issued);
      if (!cert || !ServingCertUsable(*cert, key, options.cluster_ca_pem, dns, ips,
                                      std::chrono::system_clock::now())) {
        return Status(Code::kInvalidArgument,
                      "the certificate issued for " + name +
                          " does not fit the key, the cluster CA or the node's names");
      }
      if (Status s = WriteFile(files.cert_file, *cert, 0644); !s.ok()) return s;
      spdlog::info("kubelet: serving certificate issued (csr {})", name);
      return files;
    }
    if (stopping && stopping()) return Status(Code::kUnavailable, "stopping");
    if (std::chrono::steady_clock::now() >= deadline) {
      return Status(Code::kDeadlineExceeded,
                    "certificate request " + name +
                        " was not issued in time (is a controller manager with the cluster CA "
                        "key running?)");
    }
    std::this_thread::sleep_for(options.poll_interval);
    auto fresh = client.Get(kCsrs, "", name);
    if (fresh.ok()) {
      csr = std::move(*fresh);
    } else if (client::IsNotFound(fresh.error())) {
      return Status(Code::kUnavailable, "certificate request " + name + " was deleted");
    }
  }
}

}  // namespace mk8s::kubelet
