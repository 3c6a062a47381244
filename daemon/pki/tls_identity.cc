#include "pki/tls_identity.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include <vector>

#include "pki/openssl_util.h"

namespace mk8s::pki {

struct TlsIdentitySlot::Identity {
  std::string chain_pem;
  internal::X509Ptr leaf;
  std::vector<internal::X509Ptr> intermediates;
  internal::PkeyPtr key;
};

namespace {

Result<std::shared_ptr<const TlsIdentitySlot::Identity>> Parse(const std::string& chain_pem,
                                                               const std::string& key_pem) {
  auto identity = std::make_shared<TlsIdentitySlot::Identity>();
  identity->chain_pem = chain_pem;
  internal::BioPtr bio(BIO_new_mem_buf(chain_pem.data(), static_cast<int>(chain_pem.size())));
  if (!bio) return Status(Code::kInternal, internal::OpenSslError("BIO_new_mem_buf"));
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    if (!identity->leaf) {
      identity->leaf.reset(cert);
    } else {
      identity->intermediates.emplace_back(cert);
    }
  }
  ERR_clear_error();  // the loop ends on "no start line"
  if (!identity->leaf) {
    return Status(Code::kInvalidArgument, "the certificate chain holds no PEM certificate");
  }
  auto key = internal::ParsePrivateKey(key_pem);
  if (!key.ok()) return key.status();
  identity->key = std::move(*key);
  if (X509_check_private_key(identity->leaf.get(), identity->key.get()) != 1) {
    ERR_clear_error();
    return Status(Code::kInvalidArgument, "the private key does not belong to the certificate");
  }
  return std::shared_ptr<const TlsIdentitySlot::Identity>(std::move(identity));
}

// Makes `ssl` present `identity`. Returns false on an OpenSSL failure.
bool Apply(SSL* ssl, const TlsIdentitySlot::Identity& identity) {
  if (SSL_use_certificate(ssl, identity.leaf.get()) != 1) return false;
  if (SSL_use_PrivateKey(ssl, identity.key.get()) != 1) return false;
  if (SSL_clear_chain_certs(ssl) != 1) return false;
  for (const internal::X509Ptr& cert : identity.intermediates) {
    if (SSL_add1_chain_cert(ssl, cert.get()) != 1) return false;
  }
  return true;
}

}  // namespace

TlsIdentitySlot::TlsIdentitySlot(std::shared_ptr<const Identity> identity)
    : identity_(std::move(identity)) {}
TlsIdentitySlot::~TlsIdentitySlot() = default;

Result<std::unique_ptr<TlsIdentitySlot>> TlsIdentitySlot::Create(const std::string& chain_pem,
                                                                 const std::string& key_pem) {
  auto identity = Parse(chain_pem, key_pem);
  if (!identity.ok()) return identity.status();
  return std::unique_ptr<TlsIdentitySlot>(new TlsIdentitySlot(std::move(*identity)));
}

std::shared_ptr<const TlsIdentitySlot::Identity> TlsIdentitySlot::Current() const {
  std::lock_guard lock(mu_);
  return identity_;
}

std::string TlsIdentitySlot::CurrentChainPem() const { return Current()->chain_pem; }

Status TlsIdentitySlot::Install(ssl_ctx_st* ctx) {
  std::shared_ptr<const Identity> identity = Current();
  // The context's own default, for code paths that read it before the callback runs.
  if (SSL_CTX_use_certificate(ctx, identity->leaf.get()) != 1 ||
      SSL_CTX_use_PrivateKey(ctx, identity->key.get()) != 1) {
    return Status(Code::kInvalidArgument, internal::OpenSslError("installing the TLS identity"));
  }
  SSL_CTX_clear_chain_certs(ctx);
  for (const internal::X509Ptr& cert : identity->intermediates) {
    if (SSL_CTX_add1_chain_cert(ctx, cert.get()) != 1) {
      return Status(Code::kInvalidArgument, internal::OpenSslError("installing the TLS chain"));
    }
  }
  SSL_CTX_set_cert_cb(ctx, &TlsIdentitySlot::OnCertificateRequest, this);
  return Status::Ok();
}

// OpenSSL calls this on the handshake's thread: a server before it sends its certificate, a
// client when the server asks for one. 1 = go on, 0 = fail the handshake.
int TlsIdentitySlot::OnCertificateRequest(ssl_st* ssl, void* slot) {
  std::shared_ptr<const Identity> identity = static_cast<TlsIdentitySlot*>(slot)->Current();
  return Apply(ssl, *identity) ? 1 : 0;
}

Status TlsIdentitySlot::Replace(const std::string& chain_pem, const std::string& key_pem) {
  auto identity = Parse(chain_pem, key_pem);
  if (!identity.ok()) return identity.status();
  std::lock_guard lock(mu_);
  identity_ = std::move(*identity);
  return Status::Ok();
}

}  // namespace mk8s::pki
