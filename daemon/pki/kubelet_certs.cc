#include "pki/kubelet_certs.h"

#include <arpa/inet.h>

#include <algorithm>

#include "pki/cluster_pki.h"
#include "pki/file_util.h"

namespace mk8s::pki {
namespace {

using internal::ReadFile;
using internal::WriteFileAtomic;

constexpr std::chrono::seconds kRenewBefore{30LL * 24 * 3600};

bool IsIp(const std::string& text) {
  unsigned char buffer[16];
  return inet_pton(AF_INET, text.c_str(), buffer) == 1 ||
         inet_pton(AF_INET6, text.c_str(), buffer) == 1;
}

std::string CanonicalIp(const std::string& ip) {
  unsigned char buffer[16];
  char out[INET6_ADDRSTRLEN];
  if (inet_pton(AF_INET, ip.c_str(), buffer) == 1 && inet_ntop(AF_INET, buffer, out, sizeof(out)))
    return out;
  if (inet_pton(AF_INET6, ip.c_str(), buffer) == 1 && inet_ntop(AF_INET6, buffer, out, sizeof(out)))
    return out;
  return ip;
}

void AddUnique(std::vector<std::string>& list, const std::string& value) {
  if (!value.empty() && std::find(list.begin(), list.end(), value) == list.end())
    list.push_back(value);
}

struct Ca {
  KeyPair pair;
  std::string cert_file;
};

Result<Ca> LoadCa(const std::string& dir) {
  Ca ca;
  ca.cert_file = dir + "/" + ClusterPki::kCaCert;
  auto cert = ReadFile(ca.cert_file);
  auto key = ReadFile(dir + "/" + ClusterPki::kCaKey);
  if (!cert.ok() || !key.ok()) {
    return Status(Code::kNotFound, "the cluster CA (" + ca.cert_file +
                                       " and its key) is missing: start the API server first");
  }
  ca.pair = KeyPair{std::move(*cert), std::move(*key)};
  return ca;
}

// True when the stored pair is usable as is.
bool Good(const std::string& cert_file, const std::string& key_file, const Ca& ca, Usage usage,
          const std::vector<std::string>& dns, const std::vector<std::string>& ips) {
  auto cert = ReadFile(cert_file);
  auto key = ReadFile(key_file);
  if (!cert.ok() || !key.ok()) return false;
  auto match = CertMatchesKey(*cert, *key);
  const TimePoint now = std::chrono::system_clock::now();
  if (!match.ok() || !*match) return false;
  if (!VerifyCertificate(*cert, ca.pair.cert_pem, now, usage).ok()) return false;
  auto info = ParseCertificate(*cert);
  if (!info.ok() || info->not_after < now + kRenewBefore) return false;
  for (const std::string& name : dns) {
    if (std::find(info->dns_names.begin(), info->dns_names.end(), name) == info->dns_names.end())
      return false;
  }
  for (const std::string& ip : ips) {
    if (std::find(info->ip_addresses.begin(), info->ip_addresses.end(), ip) ==
        info->ip_addresses.end())
      return false;
  }
  return true;
}

Status Write(const KeyPair& pair, const std::string& cert_file, const std::string& key_file) {
  if (Status s = WriteFileAtomic(key_file, pair.key_pem, 0600); !s.ok()) return s;
  return WriteFileAtomic(cert_file, pair.cert_pem, 0644);
}

}  // namespace

Result<CertFiles> LoadOrCreateKubeletServingCert(const std::string& credentials_dir,
                                                 const std::string& node_name,
                                                 const std::vector<std::string>& node_ips) {
  Result<Ca> ca = LoadCa(credentials_dir);
  if (!ca.ok()) return ca.status();
  CertFiles files{credentials_dir + "/" + kKubeletCert, credentials_dir + "/" + kKubeletKey,
                  ca->cert_file};
  std::vector<std::string> dns;
  std::vector<std::string> ips;
  // A node name that is an IP goes into the IP SANs.
  if (IsIp(node_name)) {
    AddUnique(ips, CanonicalIp(node_name));
  } else {
    AddUnique(dns, node_name);
  }
  AddUnique(dns, "localhost");
  for (const std::string& ip : node_ips) {
    if (!IsIp(ip)) return Status(Code::kInvalidArgument, "node IP '" + ip + "' is not an IP");
    AddUnique(ips, CanonicalIp(ip));
  }
  AddUnique(ips, "127.0.0.1");
  if (Good(files.cert_file, files.key_file, *ca, Usage::kServer, dns, ips)) return files;
  ServingCertOptions options;
  options.common_name = node_name.empty() ? "kubelet" : node_name;
  options.dns_names = dns;
  options.ip_addresses = ips;
  Result<KeyPair> issued = IssueServingCert(ca->pair, options);
  if (!issued.ok()) return issued.status();
  if (Status s = Write(*issued, files.cert_file, files.key_file); !s.ok()) return s;
  return files;
}

Result<CertFiles> LoadOrCreateKubeletClientCert(const std::string& credentials_dir) {
  Result<Ca> ca = LoadCa(credentials_dir);
  if (!ca.ok()) return ca.status();
  CertFiles files{credentials_dir + "/" + kKubeletClientCert,
                  credentials_dir + "/" + kKubeletClientKey, ca->cert_file};
  if (Good(files.cert_file, files.key_file, *ca, Usage::kClient, {}, {})) return files;
  ClientCertOptions options;
  options.user = kKubeletClientUser;
  options.groups = {"system:masters"};
  Result<KeyPair> issued = IssueClientCert(ca->pair, options);
  if (!issued.ok()) return issued.status();
  if (Status s = Write(*issued, files.cert_file, files.key_file); !s.ok()) return s;
  return files;
}

}  // namespace mk8s::pki
