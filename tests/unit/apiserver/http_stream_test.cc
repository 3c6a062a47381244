// Streamed HTTPS responses (watches) through the real HttpServer and a plain OpenSSL client:
// frames written from several threads arrive in order even when they pile up and go out in
// batches or straight from the caller (nothing unsent), Close ends the chunked body properly, a
// client that does not read is cut off without holding up a fast one, a client that hangs up
// ends its stream, and writes in a SendBatch are sent at its flush, in order with other threads'
// writes and a Close.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "apiserver/http/http_server.h"
#include "apiserver/http/send_batch.h"
#include "pki/certificates.h"

namespace mk8s::apiserver::http {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kDeadline = std::chrono::seconds(20);

// An HttpServer whose handler starts a stream for every request and hands it to the test.
class StreamServer {
 public:
  explicit StreamServer(size_t max_backlog) {
    // The plain OpenSSL clients below write alerts on sockets the server closed (mk8sd itself
    // ignores SIGPIPE, and the server sends with MSG_NOSIGNAL).
    std::signal(SIGPIPE, SIG_IGN);
    auto ca = pki::CreateCa();
    EXPECT_TRUE(ca.ok());
    pki::ServingCertOptions serving;
    serving.ip_addresses = {"127.0.0.1"};
    auto cert = pki::IssueServingCert(*ca, serving);
    EXPECT_TRUE(cert.ok());
    ServerOptions options;
    options.bind_address = "127.0.0.1";
    options.port = 0;
    options.cert_pem = cert->cert_pem;
    options.key_pem = cert->key_pem;
    options.max_stream_backlog_bytes = max_backlog;
    auto server = HttpServer::Start(options, [this](Request, std::shared_ptr<Responder> responder) {
      auto stream = responder->StartStream(200, "application/json");
      std::lock_guard lock(mu_);
      streams_.push_back(std::move(stream));
      cv_.notify_all();
    });
    EXPECT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
  }
  uint16_t port() const { return server_->port(); }
  // The stream of the next request, or nullptr after the deadline.
  std::shared_ptr<ResponseStream> NextStream() {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, kDeadline, [&] { return !streams_.empty(); })) return nullptr;
    auto stream = streams_.front();
    streams_.pop_front();
    return stream;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<ResponseStream>> streams_;
  std::unique_ptr<HttpServer> server_;
};

// A blocking TLS client that sends one GET and reads the raw response.
class Client {
 public:
  explicit Client(uint16_t port) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval timeout{static_cast<time_t>(kDeadline.count()), 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    connected_ = connected_ && SSL_connect(ssl_) == 1;
    const std::string request = "GET /watch HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    connected_ = connected_ && SSL_write(ssl_, request.data(), static_cast<int>(request.size())) ==
                                   static_cast<int>(request.size());
  }
  ~Client() {
    SSL_free(ssl_);
    if (fd_ >= 0) ::close(fd_);
    SSL_CTX_free(ctx_);
  }
  bool connected() const { return connected_; }
  // Reads until EOF (or error/timeout): everything the server sent, decrypted.
  std::string ReadToEnd() {
    std::string all;
    char buffer[16384];
    while (true) {
      const int n = SSL_read(ssl_, buffer, sizeof(buffer));
      if (n <= 0) break;
      all.append(buffer, static_cast<size_t>(n));
    }
    ERR_clear_error();
    return all;
  }
  void HangUp() {
    ::shutdown(fd_, SHUT_RDWR);
  }

 private:
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  int fd_ = -1;
  bool connected_ = false;
};

struct Parsed {
  std::string head;
  std::string body;        // the chunks' data, concatenated
  bool terminated = false;  // the terminal chunk came
  bool well_formed = true;
};

Parsed ParseChunked(const std::string& raw) {
  Parsed parsed;
  const size_t head_end = raw.find("\r\n\r\n");
  if (head_end == std::string::npos) {
    parsed.well_formed = false;
    return parsed;
  }
  parsed.head = raw.substr(0, head_end + 4);
  size_t at = head_end + 4;
  while (at < raw.size()) {
    const size_t line_end = raw.find("\r\n", at);
    if (line_end == std::string::npos) break;  // truncated
    const size_t size = std::stoul(raw.substr(at, line_end - at), nullptr, 16);
    at = line_end + 2;
    if (size == 0) {
      parsed.terminated = raw.compare(at, 2, "\r\n") == 0;
      return parsed;
    }
    if (at + size + 2 > raw.size()) break;  // truncated
    parsed.body.append(raw, at, size);
    if (raw.compare(at + size, 2, "\r\n") != 0) parsed.well_formed = false;
    at += size + 2;
  }
  return parsed;
}

std::string Frame(int writer, int sequence) {
  // ~200 bytes, so a few thousand fill the socket buffers and writes pile up.
  return "{\"writer\":" + std::to_string(writer) + ",\"n\":" + std::to_string(sequence) +
         ",\"pad\":\"" + std::string(160, 'x') + "\"}\n";
}

// Checks that each writer's frames appear complete and in order in `body`.
void ExpectInOrder(const std::string& body, int writers, int per_writer) {
  std::vector<int> next(writers, 0);
  size_t at = 0;
  while (at < body.size()) {
    const size_t end = body.find('\n', at);
    ASSERT_NE(end, std::string::npos) << "a frame was cut";
    const std::string line = body.substr(at, end - at);
    at = end + 1;
    const int writer = std::stoi(line.substr(line.find("\"writer\":") + 9));
    const int n = std::stoi(line.substr(line.find("\"n\":") + 4));
    ASSERT_GE(writer, 0);
    ASSERT_LT(writer, writers);
    ASSERT_EQ(n, next[writer]) << "writer " << writer << " out of order";
    ++next[writer];
  }
  for (int w = 0; w < writers; ++w) EXPECT_EQ(next[w], per_writer) << "writer " << w;
}

// Waits (bounded) until the stream's OnClosed callback ran.
bool WaitClosed(ResponseStream& stream) {
  auto closed = std::make_shared<std::atomic<bool>>(false);
  stream.OnClosed([closed] { closed->store(true); });
  const auto until = Clock::now() + kDeadline;
  while (!closed->load() && Clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // poll with a deadline
  }
  return closed->load();
}

TEST(HttpStreamTest, BatchedFramesFromSeveralThreadsArriveInOrderAndCloseEndsTheBody) {
  StreamServer server(64 << 20);
  Client client(server.port());
  ASSERT_TRUE(client.connected());
  auto stream = server.NextStream();
  ASSERT_NE(stream, nullptr);
  // Nobody reads yet: the socket fills and later frames queue and go out in batches.
  constexpr int kWriters = 3;
  constexpr int kPerWriter = 15000;  // ~9 MB, more than the socket buffers take
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      for (int n = 0; n < kPerWriter; ++n) {
        auto frame = std::make_shared<const std::string>(Frame(w, n));
        ASSERT_TRUE(stream->WriteShared(frame));
      }
    });
  }
  for (auto& thread : writers) thread.join();
  EXPECT_GT(stream->buffered_bytes(), 0u);  // some of it waits for the client
  stream->Close();
  EXPECT_FALSE(stream->Write("after close\n"));
  const Parsed parsed = ParseChunked(client.ReadToEnd());
  EXPECT_TRUE(parsed.well_formed);
  EXPECT_EQ(parsed.head.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << parsed.head;
  EXPECT_NE(parsed.head.find("Transfer-Encoding: chunked\r\n"), std::string::npos);
  EXPECT_TRUE(parsed.terminated);
  ExpectInOrder(parsed.body, kWriters, kPerWriter);
  EXPECT_TRUE(WaitClosed(*stream));
  EXPECT_EQ(stream->buffered_bytes(), 0u);
}

TEST(HttpStreamTest, DirectAndQueuedWritesKeepOrderWhileTheClientReads) {
  // The client reads as frames come, so writes alternate between the direct path (nothing
  // unsent: encrypted and sent by the caller) and the queued one (socket full or another write
  // ahead); owned and shared frames mixed, from several threads.
  StreamServer server(64 << 20);
  Client client(server.port());
  ASSERT_TRUE(client.connected());
  auto stream = server.NextStream();
  ASSERT_NE(stream, nullptr);
  std::string raw;
  std::thread reader([&] { raw = client.ReadToEnd(); });
  constexpr int kWriters = 4;
  constexpr int kPerWriter = 5000;
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      for (int n = 0; n < kPerWriter; ++n) {
        const bool ok = n % 2 == 0
                            ? stream->Write(Frame(w, n))
                            : stream->WriteShared(std::make_shared<const std::string>(Frame(w, n)));
        ASSERT_TRUE(ok);
      }
    });
  }
  for (auto& thread : writers) thread.join();
  stream->Close();
  reader.join();
  const Parsed parsed = ParseChunked(raw);
  EXPECT_TRUE(parsed.well_formed);
  EXPECT_TRUE(parsed.terminated);
  ExpectInOrder(parsed.body, kWriters, kPerWriter);
  EXPECT_TRUE(WaitClosed(*stream));
  EXPECT_FALSE(stream->WriteShared(std::make_shared<const std::string>(Frame(0, 0))));
}

TEST(HttpStreamTest, ASlowClientIsCutOffWithoutHoldingUpAFastOne) {
  constexpr size_t kBacklogCap = 256 << 10;
  StreamServer server(kBacklogCap);
  Client slow(server.port());
  ASSERT_TRUE(slow.connected());
  auto slow_stream = server.NextStream();
  ASSERT_NE(slow_stream, nullptr);
  Client fast(server.port());
  ASSERT_TRUE(fast.connected());
  auto fast_stream = server.NextStream();
  ASSERT_NE(fast_stream, nullptr);
  std::string fast_raw;
  std::thread reader([&] { fast_raw = fast.ReadToEnd(); });

  // The same shared frames to both, as the watch fan-out does. The slow client never reads.
  constexpr int kFrames = 60000;  // ~12 MB, far past the slow client's buffers and the cap
  int slow_accepted = 0;
  bool slow_refused = false;
  for (int n = 0; n < kFrames; ++n) {
    auto frame = std::make_shared<const std::string>(Frame(0, n));
    if (!slow_refused) {
      if (slow_stream->WriteShared(frame)) {
        ++slow_accepted;
      } else {
        slow_refused = true;
      }
    }
    if (!fast_stream->WriteShared(frame)) {
      ADD_FAILURE() << "the fast client was cut off at frame " << n;
      break;  // the reader still ends: the cut-off closed its connection
    }
    // The fast client keeps up, but it shares the CPU with this loop: whenever it falls behind,
    // let it drain well below the cap before writing on, as a reading client would.
    const auto until = Clock::now() + kDeadline;
    while (fast_stream->buffered_bytes() > kBacklogCap / 4 && Clock::now() < until) {
      std::this_thread::yield();
    }
  }
  fast_stream->Close();
  reader.join();

  EXPECT_TRUE(slow_refused) << "accepted all " << slow_accepted << " frames";
  EXPECT_TRUE(WaitClosed(*slow_stream));
  EXPECT_FALSE(slow_stream->Write("more\n"));
  const Parsed parsed = ParseChunked(fast_raw);
  EXPECT_TRUE(parsed.well_formed);
  EXPECT_TRUE(parsed.terminated);
  ExpectInOrder(parsed.body, 1, kFrames);
  // The slow client got a cut-off body: no terminal chunk.
  slow.HangUp();
  EXPECT_FALSE(ParseChunked(slow.ReadToEnd()).terminated);
}

TEST(HttpStreamTest, AClientHangingUpEndsItsStream) {
  StreamServer server(1 << 20);
  Client client(server.port());
  ASSERT_TRUE(client.connected());
  auto stream = server.NextStream();
  ASSERT_NE(stream, nullptr);
  ASSERT_TRUE(stream->Write(Frame(0, 0)));
  client.HangUp();
  EXPECT_TRUE(WaitClosed(*stream));
  EXPECT_FALSE(stream->Write(Frame(0, 1)));
}


TEST(HttpStreamTest, ASendBatchHoldsSendsBackUntilItsFlush) {
  StreamServer server(1 << 20);
  Client client(server.port());
  ASSERT_TRUE(client.connected());
  auto stream = server.NextStream();
  ASSERT_NE(stream, nullptr);
  // The response starts on the connection's strand; until then writes queue. One frame, sent
  // once the stream has started, shows that it has.
  ASSERT_TRUE(stream->Write(Frame(0, 0)));
  const auto until = Clock::now() + kDeadline;
  while (stream->buffered_bytes() > 0 && Clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));  // poll with a deadline
  }
  ASSERT_EQ(stream->buffered_bytes(), 0u);
  {
    SendBatch batch;
    ASSERT_TRUE(stream->Write(Frame(0, 1)));
    ASSERT_TRUE(stream->WriteShared(std::make_shared<const std::string>(Frame(0, 2))));
    // Encrypted, not sent: the records wait for the flush.
    EXPECT_GT(stream->buffered_bytes(), 0u);
    batch.Flush();
    // Two small records on a connection with room: one send took them.
    EXPECT_EQ(stream->buffered_bytes(), 0u);
    ASSERT_TRUE(stream->Write(Frame(0, 3)));
    EXPECT_GT(stream->buffered_bytes(), 0u);
    // Close sends what the batch holds, then the terminal chunk; the flush at the end of the
    // scope then finds nothing to send.
    stream->Close();
  }
  const Parsed parsed = ParseChunked(client.ReadToEnd());
  EXPECT_TRUE(parsed.well_formed);
  EXPECT_TRUE(parsed.terminated);
  ExpectInOrder(parsed.body, 1, 4);
  EXPECT_TRUE(WaitClosed(*stream));
}

TEST(HttpStreamTest, BatchedAndPlainWritesFromSeveralThreadsKeepOrder) {
  // Writers in SendBatch scopes of a few frames (as the watch fan-out's threads), on the same
  // streams as writers without one (a bookmark timer): each writer's frames arrive in order on
  // every stream, whoever's send carries them.
  StreamServer server(64 << 20);
  constexpr int kStreams = 3;
  std::vector<std::unique_ptr<Client>> clients;
  std::vector<std::shared_ptr<ResponseStream>> streams;
  for (int i = 0; i < kStreams; ++i) {
    clients.push_back(std::make_unique<Client>(server.port()));
    ASSERT_TRUE(clients.back()->connected());
    streams.push_back(server.NextStream());
    ASSERT_NE(streams.back(), nullptr);
  }
  std::vector<std::string> raw(kStreams);
  std::vector<std::thread> readers;
  for (int i = 0; i < kStreams; ++i) {
    readers.emplace_back([&, i] { raw[i] = clients[i]->ReadToEnd(); });
  }
  constexpr int kWriters = 4;  // even: in batches, odd: plain
  constexpr int kPerWriter = 3000;
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      int n = 0;
      while (n < kPerWriter) {
        std::unique_ptr<SendBatch> batch;
        if (w % 2 == 0) batch = std::make_unique<SendBatch>();
        for (int k = 0; k < 5 && n < kPerWriter; ++k, ++n) {
          auto frame = std::make_shared<const std::string>(Frame(w, n));
          for (auto& stream : streams) ASSERT_TRUE(stream->WriteShared(frame));
        }
      }
    });
  }
  for (auto& thread : writers) thread.join();
  for (auto& stream : streams) stream->Close();
  for (auto& thread : readers) thread.join();
  for (int i = 0; i < kStreams; ++i) {
    const Parsed parsed = ParseChunked(raw[i]);
    EXPECT_TRUE(parsed.well_formed);
    EXPECT_TRUE(parsed.terminated);
    ExpectInOrder(parsed.body, kWriters, kPerWriter);
    EXPECT_TRUE(WaitClosed(*streams[i]));
  }
}

}  // namespace
}  // namespace mk8s::apiserver::http
