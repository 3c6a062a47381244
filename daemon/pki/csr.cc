// PKCS#10 with OpenSSL 3 (X509_REQ), and the kubelet-serving rules.
#include "pki/csr.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <memory>
#include <set>

#include "pki/openssl_util.h"

namespace mk8s::pki {
namespace {

using internal::OpenSslError;

struct ReqFree {
  void operator()(X509_REQ* p) const { X509_REQ_free(p); }
};
struct ExtsFree {
  void operator()(STACK_OF(X509_EXTENSION) * p) const {
    sk_X509_EXTENSION_pop_free(p, X509_EXTENSION_free);
  }
};
struct GensFree {
  void operator()(GENERAL_NAMES* p) const { GENERAL_NAMES_free(p); }
};
using ReqPtr = std::unique_ptr<X509_REQ, ReqFree>;

constexpr std::string_view kBegin = "-----BEGIN CERTIFICATE REQUEST-----";
constexpr std::string_view kEnd = "-----END CERTIFICATE REQUEST-----";

std::string Utf8(const ASN1_STRING* str) {
  if (str == nullptr) return "";
  unsigned char* out = nullptr;
  const int length = ASN1_STRING_to_UTF8(&out, str);
  if (length < 0) return "";
  std::string text(reinterpret_cast<char*>(out), static_cast<size_t>(length));
  OPENSSL_free(out);
  return text;
}

std::string Ia5(const ASN1_STRING* str) {
  if (str == nullptr) return "";
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(str)),
                     static_cast<size_t>(ASN1_STRING_length(str)));
}

// "10.0.0.1" / "::1" from the raw 4 or 16 bytes of an IP SAN ("" if neither).
std::string IpText(const ASN1_OCTET_STRING* bytes) {
  char out[INET6_ADDRSTRLEN] = {};
  const int length = ASN1_STRING_length(bytes);
  const unsigned char* data = ASN1_STRING_get0_data(bytes);
  if (length == 4 && inet_ntop(AF_INET, data, out, sizeof(out))) return out;
  if (length == 16 && inet_ntop(AF_INET6, data, out, sizeof(out))) return out;
  return "";
}

// The canonical text of an IP, or the input unchanged when it is not one.
std::string Canonical(const std::string& text) {
  unsigned char buffer[16];
  char out[INET6_ADDRSTRLEN];
  if (inet_pton(AF_INET, text.c_str(), buffer) == 1 && inet_ntop(AF_INET, buffer, out, sizeof(out)))
    return out;
  if (inet_pton(AF_INET6, text.c_str(), buffer) == 1 &&
      inet_ntop(AF_INET6, buffer, out, sizeof(out)))
    return out;
  return text;
}

}  // namespace

Result<std::string> CreateCsr(std::string_view key_pem, const CsrOptions& options) {
  ERR_clear_error();
  auto key = internal::ParsePrivateKey(key_pem);
  if (!key.ok()) return key.status();
  ReqPtr req(X509_REQ_new());
  if (!req || X509_REQ_set_version(req.get(), 0) != 1)
    return Status(Code::kInternal, OpenSslError("X509_REQ_new"));
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  for (const std::string& org : options.organizations) {
    if (X509_NAME_add_entry_by_NID(name, NID_organizationName, MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(org.data()),
                                   static_cast<int>(org.size()), -1, 0) != 1)
      return Status(Code::kInvalidArgument, OpenSslError("invalid organization \"" + org + "\""));
  }
  if (!options.common_name.empty() &&
      X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(options.common_name.data()),
                                 static_cast<int>(options.common_name.size()), -1, 0) != 1)
    return Status(Code::kInvalidArgument,
                  OpenSslError("invalid common name \"" + options.common_name + "\""));
  if (X509_REQ_set_pubkey(req.get(), key->get()) != 1)
    return Status(Code::kInternal, OpenSslError("cannot set the CSR's key"));
  if (!options.dns_names.empty() || !options.ip_addresses.empty()) {
    std::unique_ptr<GENERAL_NAMES, GensFree> gens(sk_GENERAL_NAME_new_null());
    if (!gens) return Status(Code::kInternal, "out of memory");
    for (const std::string& dns : options.dns_names) {
      ASN1_IA5STRING* str = ASN1_IA5STRING_new();
      GENERAL_NAME* gen = GENERAL_NAME_new();
      if (!str || !gen || ASN1_STRING_set(str, dns.data(), static_cast<int>(dns.size())) != 1) {
        ASN1_IA5STRING_free(str);
        GENERAL_NAME_free(gen);
        return Status(Code::kInternal, "cannot build a DNS name");
      }
      GENERAL_NAME_set0_value(gen, GEN_DNS, str);
      sk_GENERAL_NAME_push(gens.get(), gen);
    }
    for (const std::string& ip : options.ip_addresses) {
      ASN1_OCTET_STRING* bytes = a2i_IPADDRESS(ip.c_str());
      if (!bytes) {
        ERR_clear_error();
        return Status(Code::kInvalidArgument, "invalid IP address \"" + ip + "\"");
      }
      GENERAL_NAME* gen = GENERAL_NAME_new();
      if (!gen) {
        ASN1_OCTET_STRING_free(bytes);
        return Status(Code::kInternal, "out of memory");
      }
      GENERAL_NAME_set0_value(gen, GEN_IPADD, bytes);
      sk_GENERAL_NAME_push(gens.get(), gen);
    }
    std::unique_ptr<STACK_OF(X509_EXTENSION), ExtsFree> exts(sk_X509_EXTENSION_new_null());
    X509_EXTENSION* san = X509V3_EXT_i2d(NID_subject_alt_name, 0, gens.get());
    if (!exts || !san) return Status(Code::kInternal, OpenSslError("cannot encode the SANs"));
    sk_X509_EXTENSION_push(exts.get(), san);
    if (X509_REQ_add_extensions(req.get(), exts.get()) != 1)
      return Status(Code::kInternal, OpenSslError("cannot add the SANs"));
  }
  if (X509_REQ_sign(req.get(), key->get(), EVP_sha256()) <= 0)
    return Status(Code::kInternal, OpenSslError("cannot sign the CSR"));
  internal::BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509_REQ(bio.get(), req.get()) != 1)
    return Status(Code::kInternal, OpenSslError("cannot encode the CSR"));
  return internal::BioToString(bio.get());
}

Result<CsrInfo> ParseCsr(std::string_view pem) {
  ERR_clear_error();
  const size_t begin = pem.find(kBegin);
  if (begin == std::string_view::npos) {
    return Status(Code::kInvalidArgument, "PEM block type must be CERTIFICATE REQUEST");
  }
  const size_t end = pem.find(kEnd, begin);
  if (end == std::string_view::npos) {
    return Status(Code::kInvalidArgument, "the CERTIFICATE REQUEST PEM block has no end line");
  }
  if (pem.find(kBegin, end) != std::string_view::npos) {
    return Status(Code::kInvalidArgument, "more than one CERTIFICATE REQUEST PEM block");
  }
  const std::string_view block = pem.substr(begin, end + kEnd.size() - begin);
  internal::BioPtr bio(BIO_new_mem_buf(block.data(), static_cast<int>(block.size())));
  ReqPtr req(bio ? PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!req)
    return Status(Code::kInvalidArgument, OpenSslError("cannot parse the certificate request"));
  EVP_PKEY* key = X509_REQ_get0_pubkey(req.get());
  if (key == nullptr || X509_REQ_verify(req.get(), key) != 1) {
    return Status(Code::kInvalidArgument,
                  OpenSslError("the certificate request's signature does not verify"));
  }
  CsrInfo info;
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  const int cn = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (cn >= 0) info.common_name = Utf8(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, cn)));
  for (int i = X509_NAME_get_index_by_NID(name, NID_organizationName, -1); i >= 0;
       i = X509_NAME_get_index_by_NID(name, NID_organizationName, i)) {
    info.organizations.push_back(Utf8(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i))));
  }
  std::unique_ptr<STACK_OF(X509_EXTENSION), ExtsFree> exts(X509_REQ_get_extensions(req.get()));
  if (exts) {
    int critical = 0;
    std::unique_ptr<GENERAL_NAMES, GensFree> gens(static_cast<GENERAL_NAMES*>(
        X509V3_get_d2i(exts.get(), NID_subject_alt_name, &critical, nullptr)));
    if (!gens && critical == -2) {
      return Status(Code::kInvalidArgument, "more than one subjectAltName extension");
    }
    for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens.get()); ++i) {
      const GENERAL_NAME* gen = sk_GENERAL_NAME_value(gens.get(), i);
      switch (gen->type) {
        case GEN_DNS:
          info.dns_names.push_back(Ia5(gen->d.dNSName));
          break;
        case GEN_EMAIL:
          info.emails.push_back(Ia5(gen->d.rfc822Name));
          break;
        case GEN_URI:
          info.uris.push_back(Ia5(gen->d.uniformResourceIdentifier));
          break;
        case GEN_IPADD: {
          std::string ip = IpText(gen->d.iPAddress);
          if (ip.empty()) return Status(Code::kInvalidArgument, "an IP SAN of a bad length");
          info.ip_addresses.push_back(std::move(ip));
          break;
        }
        default:
          ++info.other_names;
          break;
      }
    }
  }
  auto public_pem = internal::PublicKeyToPem(key);
  if (!public_pem.ok()) return public_pem.status();
  info.public_key_pem = std::move(*public_pem);
  ERR_clear_error();
  return info;
}

Status CheckKubeletServingCsr(const CsrInfo& csr, const std::vector<std::string>& usages) {
  auto invalid = [](const std::string& what) { return Status(Code::kInvalidArgument, what); };
  if (NodeNameOfUser(csr.common_name).empty()) {
    return invalid("the subject's common name \"" + csr.common_name +
                   "\" must be system:node:<node name>");
  }
  if (csr.organizations != std::vector<std::string>{kNodesGroup}) {
    return invalid("the subject's organization must be exactly system:nodes");
  }
  if (!csr.emails.empty() || !csr.uris.empty() || csr.other_names > 0) {
    return invalid("only DNS and IP subjectAltNames are allowed");
  }
  if (csr.dns_names.empty() && csr.ip_addresses.empty()) {
    return invalid("at least one DNS or IP subjectAltName is required");
  }
  const std::set<std::string> got(usages.begin(), usages.end());
  const std::set<std::string> rsa = {"digital signature", "key encipherment", "server auth"};
  const std::set<std::string> no_rsa = {"digital signature", "server auth"};
  if (got != rsa && got != no_rsa) {
    return invalid(
        "usages must be [digital signature, key encipherment, server auth] or [digital "
        "signature, server auth]");
  }
  return Status::Ok();
}

Status CheckCsrFromItsNode(const CsrInfo& csr, const std::string& username,
                           const std::vector<std::string>& groups,
                           const std::vector<std::string>& node_names) {
  auto denied = [](const std::string& what) { return Status(Code::kInvalidArgument, what); };
  if (NodeNameOfUser(username).empty() ||
      std::find(groups.begin(), groups.end(), kNodesGroup) == groups.end()) {
    return denied(
        "only a node (system:node:<name> in group system:nodes) may request its "
        "serving certificate, not \"" +
        username + "\"");
  }
  if (csr.common_name != username) {
    return denied("\"" + username + "\" may not request a certificate for \"" + csr.common_name +
                  "\"");
  }
  std::set<std::string> allowed;
  for (const std::string& name : node_names) allowed.insert(Canonical(name));
  for (const auto* list : {&csr.dns_names, &csr.ip_addresses}) {
    for (const std::string& san : *list) {
      if (allowed.count(Canonical(san)) == 0) {
        return denied("the subjectAltName \"" + san + "\" is neither the node's name nor one of " +
                      "its addresses");
      }
    }
  }
  return Status::Ok();
}

std::string NodeNameOfUser(std::string_view user) {
  const std::string_view prefix = kNodeUserPrefix;
  if (user.size() <= prefix.size() || user.substr(0, prefix.size()) != prefix) return "";
  return std::string(user.substr(prefix.size()));
}

}  // namespace mk8s::pki
