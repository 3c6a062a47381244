#include "apiserver/http/tls_server.h"

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <boost/asio/buffer.hpp>
#include <cstring>
#include <string>

namespace mk8s::apiserver::http {
namespace {

namespace ssl = boost::asio::ssl;

// Offer only HTTP/1.1 in ALPN: kubectl then never tries HTTP/2.
int SelectAlpn(SSL*, const unsigned char** out, unsigned char* out_length, const unsigned char* in,
               unsigned int in_length, void*) {
  static const unsigned char kHttp11[] = {'h', 't', 't', 'p', '/', '1', '.', '1'};
  for (unsigned int i = 0; i < in_length;) {
    const unsigned int length = in[i];
    if (i + 1 + length > in_length) break;
    if (length == sizeof(kHttp11) && std::memcmp(in + i + 1, kHttp11, length) == 0) {
      *out = in + i + 1;
      *out_length = static_cast<unsigned char>(length);
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + length;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

}  // namespace

void ConfigureServerTls(ssl::context& tls, const ServerOptions& options) {
  tls.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                  ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  tls.use_certificate_chain(boost::asio::buffer(options.cert_pem));
  tls.use_private_key(boost::asio::buffer(options.key_pem), ssl::context::pem);
  if (!options.client_ca_pem.empty()) {
    tls.add_certificate_authority(boost::asio::buffer(options.client_ca_pem));
    // Ask for a client certificate but do not require one: tokens are another way in.
    // The verdict is read after the handshake (SSL_get_verify_result).
    tls.set_verify_mode(ssl::verify_peer);
    tls.set_verify_callback([](bool, ssl::verify_context&) { return true; });
  }
  SSL_CTX_set_alpn_select_cb(tls.native_handle(), SelectAlpn, nullptr);
  // TLS 1.3: the same three suites as OpenSSL's default, but AES-128-GCM first and chosen by us
  // (clients, Go's and OpenSSL's, list AES-256-GCM first). Both are AEADs run on AES-NI; the
  // 128-bit key takes 10 rounds instead of 14, so every watch event's record costs the server
  // and each client less. A client offering only the others still gets one of them.
  SSL_CTX_set_ciphersuites(tls.native_handle(),
                           "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
                           "TLS_CHACHA20_POLY1305_SHA256");
  SSL_CTX_set_options(tls.native_handle(), SSL_OP_CIPHER_SERVER_PREFERENCE);
}

PeerCertificate ReadPeer(SSL* ssl) {
  PeerCertificate peer;
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (cert == nullptr) return peer;
  if (SSL_get_verify_result(ssl) == X509_V_OK) {
    X509_NAME* subject = X509_get_subject_name(cert);
    for (int i = 0; i < X509_NAME_entry_count(subject); ++i) {
      X509_NAME_ENTRY* entry = X509_NAME_get_entry(subject, i);
      const int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(entry));
      unsigned char* utf8 = nullptr;
      const int length = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(entry));
      if (length < 0) continue;
      std::string value(reinterpret_cast<char*>(utf8), static_cast<size_t>(length));
      OPENSSL_free(utf8);
      if (nid == NID_commonName) peer.common_name = value;
      if (nid == NID_organizationName) peer.organizations.push_back(value);
    }
    peer.verified = !peer.common_name.empty();
  }
  X509_free(cert);
  return peer;
}

}  // namespace mk8s::apiserver::http
