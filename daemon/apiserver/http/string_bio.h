// An OpenSSL BIO that appends what TLS writes (records) to the std::string set as its data
// (BIO_set_data); with no string set, writes fail. Reads always ask to retry: the owner feeds
// received bytes through a BIO of its own. Used by the hand-driven TLS sessions (session.cc) and
// watch streams (tls_response_stream.cc) to encrypt into a buffer they send themselves.
// Internal to http/. The method is created once and shared; thread-safe.
#pragma once

#include <openssl/bio.h>

namespace mk8s::apiserver::http {

BIO_METHOD* StringSinkBioMethod();

// A new source/sink BIO method named `name` whose ctrl answers only FLUSH and whose BIOs start
// initialized: the common part of the buffer BIOs here and in session.cc; the caller sets read
// and write.
BIO_METHOD* NewBufferBioMethod(const char* name);

}  // namespace mk8s::apiserver::http
