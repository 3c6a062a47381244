// One HTTPS connection of the server: TLS driven by hand on a non-blocking socket, HTTP/1.1
// requests parsed by Beast's parser, replies written as one TLS write and one send().
//
// The TLS session has two BIOs of our own: received ciphertext is read by Asio
// (async_read_some, which never misses a readiness edge) into `raw_` and SSL_read takes it from
// there; SSL_write appends records to `out_`, which goes to the socket with a plain send() (Asio's
// async_write only when the socket is full). No Asio SSL stream, no Beast stream or serializer,
// no type-erased executors: the socket and timer are bound to the connection's strand type.
//
// Threads: every method runs on the connection's strand (`Post` from elsewhere), except Post,
// OnStrand and the StreamSocket accessors TlsResponseStream documents. Internal to http/
// (includes Asio); only http_server.cc includes it.
#pragma once

#include <openssl/ssl.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "apiserver/http/http_server.h"
#include "apiserver/http/tls_response_stream.h"

namespace mk8s::apiserver::http {

class UpgradeImpl;

// Sizes shared by session.cc and session_upgrade.cc.
inline constexpr size_t kReadChunk = 16 * 1024;  // plaintext per SSL_read
inline constexpr size_t kPiece = 256 * 1024;     // plaintext encrypted and sent in one go, at most
inline constexpr int kMaxInline = 16;            // reads served in a row before yielding the thread

// Received ciphertext not yet taken by SSL: data[begin, end). The TLS read BIO reads it.
struct CipherIn {
  std::unique_ptr<char[]> data;
  size_t begin = 0;
  size_t end = 0;
};

using Strand = boost::asio::strand<boost::asio::io_context::executor_type>;
using StrandSocket = boost::asio::basic_stream_socket<boost::asio::ip::tcp, Strand>;
using Chunk = std::shared_ptr<const std::string>;  // immutable, possibly shared

class Session final : public StreamSocket, public std::enable_shared_from_this<Session> {
 public:
  // `tls`, `options` and `handler` outlive the session (the server owns them).
  Session(StrandSocket socket, SSL_CTX* tls, const ServerOptions& options, const Handler& handler);
  ~Session() override;

  // Any thread: starts the handshake on the strand.
  void Run();
  // Any thread: runs `work` on the strand (never inline).
  template <typename Work>
  void Post(Work&& work) {
    boost::asio::post(socket_.get_executor(), std::forward<Work>(work));
  }
  // Whether the caller runs on this connection's strand (then Reply may be called directly).
  bool OnStrand() { return socket_.get_executor().running_in_this_thread(); }

  // --- strand only ---
  // Answers the request being handled; ignored if none is (the connection failed meanwhile).
  void Reply(Response response);
  // Hands the connection to `stream` with the response head (the connection closes after it).
  void BeginStream(const std::shared_ptr<TlsResponseStream>& stream, int status,
                   const std::string& content_type, const std::vector<Header>& headers);
  // Answers 101 with `headers`; from then on raw bytes flow both ways (UpgradedConnection).
  void BeginUpgrade(std::shared_ptr<UpgradeImpl> upgrade, std::vector<Header> headers);
  void StartUpgraded(std::function<void(std::string_view)> on_data,
                     std::function<void()> on_closed);
  void QueueUpgraded(Chunk bytes);
  void CloseUpgraded();

  // --- StreamSocket (TlsResponseStream; after BeginStream) ---
  int native_fd() override { return socket_.native_handle(); }
  SSL* native_ssl() override { return ssl_; }
  void PostToStrand(std::function<void()> work) override { Post(std::move(work)); }
  void WaitReadable(std::function<void(bool)> done) override;
  void WriteAll(const char* data, size_t size, std::function<void(bool)> done) override;
  void CloseSocket() override;

 private:
  enum class Phase {
    kHandshake,  // TLS handshake
    kReading,    // waiting for / reading a request
    kHandling,   // the handler has the request; no reply yet
    kWriting,    // the reply is being sent
    kStreaming,  // TlsResponseStream owns the connection
    kUpgrading,  // the 101 is being sent
    kUpgraded,   // raw bytes both ways
    kClosing,    // close_notify sent; draining until the peer closes
    kClosed,
  };

  void Handshake();
  void PrepareRequest();
  void ReadLoop();
  // Parses and reads until a request is complete (true), or waits / closes (false).
  // Sends "100 Continue" when the request just parsed asks for it; false if the connection failed.
  bool AnswerExpectContinue();
  bool ReadRequest();
  void Dispatch();
  void OnParseError(const boost::system::error_code& ec);
  void PumpReply();
  void OnUpgradeSent();
  void MaybeReadUpgraded();
  void AfterReply();
  // Asks Asio for more ciphertext; `then` runs on the strand once some arrived (or on failure
  // the connection is closed).
  void ReceiveThen(void (Session::*then)());
  // Encrypts `plain` into out_. False (and the connection closed) on a TLS failure.
  bool Encrypt(std::string_view plain);
  // Sends out_; true when all of it went out now, false when an asynchronous write holds the
  // rest (OnWritten follows) or the connection failed.
  bool SendOut();
  void OnWritten();
  void ReadUpgraded();
  void FlushUpgraded();
  void EndUpgrade();
  void Shutdown();
  void DrainUntilClosed();
  void Close();
  void ArmTimer(std::chrono::steady_clock::duration after);
  void OnTimer();
  void Touch() { last_activity_ = std::chrono::steady_clock::now(); }

  StrandSocket socket_;
  boost::asio::basic_waitable_timer<std::chrono::steady_clock,
                                    boost::asio::wait_traits<std::chrono::steady_clock>, Strand>
      timer_;
  const ServerOptions& options_;
  const Handler& handler_;
  SSL* ssl_ = nullptr;  // owned (SSL_free in the destructor); its BIOs read raw_, append to out_
  Phase phase_ = Phase::kHandshake;
  std::chrono::steady_clock::time_point last_activity_;
  PeerCertificate peer_;
  std::string remote_;

  CipherIn raw_;  // received ciphertext not yet taken by SSL
  // Ciphertext to send: out_[out_sent_, size). inflight_ is held by an async write (writing_).
  std::string out_;
  size_t out_sent_ = 0;
  std::string inflight_;
  bool writing_ = false;
  std::function<void()> after_write_;  // runs once the async write is done (BeginStream)

  // Requests.
  boost::beast::flat_buffer in_;  // decrypted bytes not yet parsed
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  bool keep_alive_ = true;
  bool in_handler_ = false;     // Dispatch is calling the handler
  bool reply_written_ = false;  // the reply went out while in_handler_
  bool continue_checked_ = false;  // this request's Expect header was looked at
  // The reply still to encrypt: head, then body from body_offset_.
  std::string reply_head_;
  std::string reply_body_;
  size_t body_offset_ = 0;
  size_t drained_ = 0;
  bool write_shut_ = false;  // shutdown(SHUT_WR) done (closing)

  // Upgraded connections.
  std::shared_ptr<UpgradeImpl> upgrade_;
  std::function<void(std::string_view)> on_data_;
  std::function<void()> on_closed_;
  std::deque<Chunk> chunks_;
  size_t batch_bytes_ = 0;  // plaintext bytes of the write in flight
  bool upgrade_reading_ = false;
  bool upgrade_close_requested_ = false;
  bool upgrade_ended_ = false;
};

// Makes the Responder of one request on `session` (http_server.cc).
std::shared_ptr<Responder> MakeResponder(std::shared_ptr<Session> session, size_t max_backlog);

// The client side of an upgraded connection; the state lives in Session (on its strand).
class UpgradeImpl final : public UpgradedConnection {
 public:
  UpgradeImpl(std::shared_ptr<Session> session, size_t max_backlog)
      : session_(std::move(session)), max_backlog_(max_backlog) {}
  void Start(std::function<void(std::string_view)> on_data,
             std::function<void()> on_closed) override;
  bool Write(std::string bytes) override;
  size_t buffered_bytes() const override { return backlog_bytes.load(); }
  void Close() override;
  void MarkEnded() { ended_ = true; }
  std::atomic<size_t> backlog_bytes{0};

 private:
  std::shared_ptr<Session> session_;
  const size_t max_backlog_;
  std::atomic<bool> ended_{false};
};

}  // namespace mk8s::apiserver::http
