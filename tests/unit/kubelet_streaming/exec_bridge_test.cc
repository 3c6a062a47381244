// RunWebSocketExec against a fake runtime streaming server (a SPDY/3.1 server on loopback built
// from the framer) and a fake upgraded client connection: the v5 channel translation, stdin
// close, resize, the exit status on channel 3 and the final close frame.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "kubelet/streaming/bridges.h"
#include "kubelet/streaming/spdy_framer.h"

namespace mk8s::kubelet {
namespace {

namespace http = apiserver::http;
using namespace std::chrono_literals;

constexpr char kExitStatus[] =
    R"({"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code",)"
    R"("reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}})";

// The client connection: records what the bridge writes; the test injects the client's bytes.
class FakeClient final : public http::UpgradedConnection {
 public:
  void Start(std::function<void(std::string_view)> on_data,
             std::function<void()> on_closed) override {
    std::lock_guard lock(mu_);
    on_data_ = std::move(on_data);
    on_closed_ = std::move(on_closed);
    cv_.notify_all();
  }
  bool Write(std::string bytes) override {
    std::lock_guard lock(mu_);
    written_ += bytes;
    cv_.notify_all();
    return !closed_;
  }
  size_t buffered_bytes() const override { return 0; }
  void Close() override {
    std::function<void()> on_closed;
    {
      std::lock_guard lock(mu_);
      if (closed_) return;
      closed_ = true;
      on_closed = std::move(on_closed_);
      on_data_ = nullptr;
      cv_.notify_all();
    }
    if (on_closed) on_closed();
  }
  // Delivers bytes as the transport would (after Start).
  void Send(const std::string& bytes) {
    std::unique_lock lock(mu_);
    ASSERT_TRUE(cv_.wait_for(lock, 10s, [&] { return on_data_ != nullptr; }));
    auto on_data = on_data_;
    lock.unlock();
    on_data(bytes);
  }
  bool WaitClosed() {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, 10s, [&] { return closed_; });
  }
  std::string written() {
    std::lock_guard lock(mu_);
    return written_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::function<void(std::string_view)> on_data_;
  std::function<void()> on_closed_;
  std::string written_;
  bool closed_ = false;
};

std::string Masked(std::string_view payload) {  // one binary client frame (payload < 126)
  std::string out = {static_cast<char>(0x82), static_cast<char>(0x80 | payload.size())};
  const char mask[4] = {1, 2, 3, 4};
  out.append(mask, 4);
  for (size_t i = 0; i < payload.size(); ++i) out.push_back(payload[i] ^ mask[i % 4]);
  return out;
}

// Server frames (unmasked) -> (opcode, payload) pairs.
std::vector<std::pair<int, std::string>> Unframe(const std::string& bytes) {
  std::vector<std::pair<int, std::string>> out;
  size_t at = 0;
  while (at + 2 <= bytes.size()) {
    const int opcode = bytes[at] & 0x0f;
    size_t length = static_cast<uint8_t>(bytes[at + 1]) & 0x7f, header = 2;
    if (length == 126) {
      length = (static_cast<uint8_t>(bytes[at + 2]) << 8) | static_cast<uint8_t>(bytes[at + 3]);
      header = 4;
    }
    out.emplace_back(opcode, bytes.substr(at + header, length));
    at += header + length;
  }
  return out;
}

// A one-connection fake of containerd's streaming server for one exec: echoes stdin (prefixed
// "got:") on stdout after the stdin FIN, then the exit status, RST, GOAWAY and close.
class FakeRuntime {
 public:
  FakeRuntime() {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(::listen(listener_, 1), 0);
    socklen_t length = sizeof(addr);
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &length);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~FakeRuntime() {
    thread_.join();
    ::close(listener_);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/exec/tok"; }
  std::string request;                      // the upgrade request
  std::map<std::string, uint32_t> streams;  // streamtype -> id
  std::string stdin_data, resize_data;

 private:
  void Serve() {
    const int fd = ::accept(listener_, nullptr, nullptr);
    ASSERT_GE(fd, 0);
    char buf[4096];
    while (request.find("\r\n\r\n") == std::string::npos) {
      const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) return void(::close(fd));
      request.append(buf, n);
    }
    const std::string ok =
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
        "X-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n";
    ::send(fd, ok.data(), ok.size(), MSG_NOSIGNAL);
    spdy::FrameParser parser;
    spdy::FrameEncoder encoder;
    auto send = [&](const std::string& frame) {
      ::send(fd, frame.data(), frame.size(), MSG_NOSIGNAL);
    };
    parser.Feed(request.substr(request.find("\r\n\r\n") + 4));
    bool done = false;
    while (!done) {
      while (true) {
        auto frame = parser.Next();
        ASSERT_TRUE(frame.ok()) << frame.status().ToString();
        if (!frame->has_value()) break;
        const spdy::Frame& f = **frame;
        if (f.type == spdy::FrameType::kSynStream) {
          streams[spdy::FindHeader(f.headers, "streamtype").value_or("?")] = f.stream_id;
          send(encoder.SynReply(f.stream_id, {}));
        } else if (f.type == spdy::FrameType::kData && f.stream_id == Id("resize")) {
          resize_data += f.data;
        } else if (f.type == spdy::FrameType::kData && f.stream_id == Id("stdin")) {
          stdin_data += f.data;
          if (f.fin()) done = true;
        }
      }
      if (done) break;
      const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) break;
      parser.Feed(std::string_view(buf, n));
    }
    send(spdy::FrameEncoder::Data(Id("stdout"), "got:" + stdin_data));
    send(spdy::FrameEncoder::Data(Id("stdout"), "", spdy::kFlagFin));
    send(spdy::FrameEncoder::Data(Id("stderr"), "warn\n"));
    send(spdy::FrameEncoder::Data(Id("error"), kExitStatus));
    send(spdy::FrameEncoder::RstStream(Id("error"), spdy::kRstCancel));
    send(spdy::FrameEncoder::GoAway(Id("stderr"), 0));
    ::close(fd);
  }

  uint32_t Id(const std::string& type) const {
    auto it = streams.find(type);
    return it == streams.end() ? 0 : it->second;
  }
  int listener_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
};

TEST(ExecBridge, TranslatesWebSocketV5ToSpdyV4AndBack) {
  FakeRuntime runtime;
  auto upstream = UpstreamSocket::Upgrade(runtime.url(), "POST",
                                          {{"Connection", "Upgrade"},
                                           {"Upgrade", "SPDY/3.1"},
                                           {"X-Stream-Protocol-Version", "v4.channel.k8s.io"}},
                                          10s);
  ASSERT_TRUE(upstream.ok()) << upstream.status().ToString();
  ASSERT_EQ((*upstream)->response().status, 101);
  auto client = std::make_shared<FakeClient>();
  std::thread bridge([&] {
    ExecStreams streams{.in = true, .out = true, .err = true, .tty = false};
    Status status = RunWebSocketExec(std::make_unique<SpdyClient>(std::move(*upstream)), streams,
                                     /*v5=*/true, [&] { return client; });
    EXPECT_TRUE(status.ok()) << status.ToString();
  });
  client->Send(Masked(std::string("\0abc", 4)));
  client->Send(Masked(std::string("\0def\n", 5)));
  client->Send(Masked(std::string("\xff\x00", 2)));  // v5: close stdin
  ASSERT_TRUE(client->WaitClosed());
  bridge.join();

  EXPECT_NE(runtime.request.find("X-Stream-Protocol-Version: v4.channel.k8s.io"),
            std::string::npos);
  EXPECT_EQ(runtime.streams.size(), 4u);  // error, stdin, stdout, stderr (no resize without tty)
  EXPECT_EQ(runtime.streams.at("error"), 1u) << "the error stream comes first";
  EXPECT_EQ(runtime.stdin_data, "abcdef\n");
  const auto messages = Unframe(client->written());
  ASSERT_EQ(messages.size(), 4u) << client->written();
  EXPECT_EQ(messages[0], (std::pair<int, std::string>{2, "\x01got:abcdef\n"}));
  EXPECT_EQ(messages[1], (std::pair<int, std::string>{2, "\x02warn\n"}));
  EXPECT_EQ(messages[2], (std::pair<int, std::string>{2, std::string("\x03") + kExitStatus}));
  EXPECT_EQ(messages[3], (std::pair<int, std::string>{8, "\x03\xe8"}));  // close 1000
}

TEST(ExecBridge, UpstreamRefusalIsReported) {
  // Nothing listens: the dial fails cleanly.
  const int probe = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(probe, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t length = sizeof(addr);
  ::getsockname(probe, reinterpret_cast<sockaddr*>(&addr), &length);
  ::close(probe);
  auto upstream = UpstreamSocket::Upgrade(
      "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/exec/x", "POST", {}, 5s);
  ASSERT_FALSE(upstream.ok());
  EXPECT_EQ(upstream.status().code(), Code::kUnavailable);
  auto bad = UpstreamSocket::Upgrade("https://127.0.0.1:1/exec/x", "POST", {}, 5s);
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace mk8s::kubelet
