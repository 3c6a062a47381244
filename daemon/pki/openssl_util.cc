#include "pki/openssl_util.h"

#include <openssl/err.h>
#include <openssl/pem.h>

namespace mk8s::pki::internal {

std::string OpenSslError(std::string_view what) {
  std::string out(what);
  bool first = true;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    out += first ? ": " : "; ";
    out += buf;
    first = false;
  }
  return out;
}

std::string BioToString(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return n > 0 ? std::string(data, size_t(n)) : std::string();
}

namespace {
BioPtr MemBio(std::string_view data) {
  return BioPtr(BIO_new_mem_buf(data.data(), int(data.size())));
}
}  // namespace

Result<X509Ptr> ParseCert(std::string_view pem_or_der) {
  ERR_clear_error();
  if (pem_or_der.empty()) return Status(Code::kInvalidArgument, "certificate is empty");
  X509* cert = nullptr;
  if (pem_or_der.find("-----BEGIN") != std::string_view::npos) {
    BioPtr bio = MemBio(pem_or_der);
    if (bio) cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
  } else {
    const unsigned char* p = reinterpret_cast<const unsigned char*>(pem_or_der.data());
    cert = d2i_X509(nullptr, &p, long(pem_or_der.size()));
  }
  if (!cert) return Status(Code::kInvalidArgument, OpenSslError("cannot parse certificate"));
  return X509Ptr(cert);
}

Result<PkeyPtr> ParsePrivateKey(std::string_view pem) {
  ERR_clear_error();
  BioPtr bio = MemBio(pem);
  EVP_PKEY* key = bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr;
  if (!key) return Status(Code::kInvalidArgument, OpenSslError("cannot parse private key PEM"));
  return PkeyPtr(key);
}

Result<PkeyPtr> ParsePublicOrPrivateKey(std::string_view pem) {
  if (pem.find("PRIVATE KEY-----") != std::string_view::npos) return ParsePrivateKey(pem);
  ERR_clear_error();
  BioPtr bio = MemBio(pem);
  EVP_PKEY* key = bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr;
  if (!key) return Status(Code::kInvalidArgument, OpenSslError("cannot parse public key PEM"));
  return PkeyPtr(key);
}

Result<std::string> CertToPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1)
    return Status(Code::kInternal, OpenSslError("cannot encode certificate"));
  return BioToString(bio.get());
}

Result<std::string> PrivateKeyToPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1)
    return Status(Code::kInternal, OpenSslError("cannot encode private key"));
  return BioToString(bio.get());
}

Result<std::string> PublicKeyToPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), key) != 1)
    return Status(Code::kInternal, OpenSslError("cannot encode public key"));
  return BioToString(bio.get());
}

Result<std::string> PublicKeyToDer(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  int n = i2d_PUBKEY(key, &der);
  if (n <= 0) return Status(Code::kInternal, OpenSslError("cannot encode public key DER"));
  std::string out(reinterpret_cast<char*>(der), size_t(n));
  OPENSSL_free(der);
  return out;
}

}  // namespace mk8s::pki::internal
