// A TLS endpoint's own certificate and key that can be replaced while it serves: certificates
// are issued for a year and renewed in their last weeks, and a daemon runs longer than that.
//
// Install() hooks the slot into an OpenSSL SSL_CTX (server or client side) with a certificate
// callback, so every handshake that starts afterwards presents the identity current at that
// moment; connections already open keep theirs. Replace() checks the new pair (the key must be
// the leaf's) and leaves the old identity in place when it fails.
//
// Ownership and threads: the slot must outlive every SSL_CTX it is installed in (declare it
// before the context it serves). Replace() and handshakes may run on any threads at once.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "common/status.h"

struct ssl_ctx_st;  // OpenSSL's SSL_CTX and SSL, kept out of this header
struct ssl_st;

namespace mk8s::pki {

class TlsIdentitySlot {
 public:
  // `chain_pem`: the leaf certificate first, then any intermediates (e.g. the CA).
  static Result<std::unique_ptr<TlsIdentitySlot>> Create(const std::string& chain_pem,
                                                         const std::string& key_pem);
  ~TlsIdentitySlot();
  TlsIdentitySlot(const TlsIdentitySlot&) = delete;
  TlsIdentitySlot& operator=(const TlsIdentitySlot&) = delete;

  // Makes `ctx` present this slot's identity (also sets it as the context's default).
  Status Install(ssl_ctx_st* ctx);
  Status Replace(const std::string& chain_pem, const std::string& key_pem);
  // The leaf certificate currently presented, as given (PEM).
  std::string CurrentChainPem() const;

  struct Identity;  // parsed leaf, chain and key (defined in the .cc)

 private:
  explicit TlsIdentitySlot(std::shared_ptr<const Identity> identity);
  std::shared_ptr<const Identity> Current() const;
  static int OnCertificateRequest(ssl_st* ssl, void* slot);

  mutable std::mutex mu_;
  std::shared_ptr<const Identity> identity_;  // GUARDED_BY(mu_); handshakes hold a reference
};

}  // namespace mk8s::pki
