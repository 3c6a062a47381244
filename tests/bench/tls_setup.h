// Plain-OpenSSL pieces shared by api_bench's request connections (api_client.cc) and its watch
// readers (watch_fanout.cc): the client TLS context built from a TlsConfig, a blocking loopback
// connect, and the text of the last TLS error. No Asio or Beast: the load tool shares the 2 cores
// with the mk8sd it measures, so it does the least a TLS client can.
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <string>

#include "api_client.h"

namespace mk8s::bench {

// A client context that trusts config.ca_pem (verify_peer) and presents the admin certificate
// chain and key, with read-ahead on (one recv takes every waiting record). The caller owns the
// result (SSL_CTX_free). nullptr with `error` set on a bad CA, certificate or key.
SSL_CTX* NewClientContext(const TlsConfig& config, std::string* error);

// A TCP socket connected to 127.0.0.1:port with TCP_NODELAY, whose every blocking send and recv
// gives up after `timeout` (SO_SNDTIMEO/SO_RCVTIMEO). Returns the fd (the caller closes it), or -1
// with `error` set.
int ConnectLoopback(int port, std::chrono::milliseconds timeout, std::string* error);

// The queue's last OpenSSL error (or errno's text, or "connection closed"); clears the queue.
std::string LastTlsError();

}  // namespace mk8s::bench
