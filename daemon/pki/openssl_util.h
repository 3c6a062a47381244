// INTERNAL to daemon/pki: RAII owners for OpenSSL objects and PEM/DER helpers.
// Only .cc files of this folder include it; public headers stay free of OpenSSL.
//
// Every function is thread-safe (OpenSSL 3 is thread-safe for distinct objects).
#pragma once

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace mk8s::pki::internal {

struct BioFree {
  void operator()(BIO* p) const { BIO_free_all(p); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};

using BioPtr = std::unique_ptr<BIO, BioFree>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

// Drains OpenSSL's thread-local error queue into "what: reason; reason".
std::string OpenSslError(std::string_view what);

// Reads everything written to a memory BIO.
std::string BioToString(BIO* bio);

// Parses a certificate given as PEM ("-----BEGIN CERTIFICATE-----") or raw DER.
Result<X509Ptr> ParseCert(std::string_view pem_or_der);
// Parses a private key PEM (PKCS#8, or traditional RSA/EC).
Result<PkeyPtr> ParsePrivateKey(std::string_view pem);
// Parses a public key PEM ("PUBLIC KEY"), or derives the public half of a private key PEM.
Result<PkeyPtr> ParsePublicOrPrivateKey(std::string_view pem);

Result<std::string> CertToPem(X509* cert);
Result<std::string> PrivateKeyToPem(EVP_PKEY* key);  // PKCS#8, unencrypted
Result<std::string> PublicKeyToPem(EVP_PKEY* key);   // SubjectPublicKeyInfo
Result<std::string> PublicKeyToDer(EVP_PKEY* key);   // SubjectPublicKeyInfo DER

}  // namespace mk8s::pki::internal
