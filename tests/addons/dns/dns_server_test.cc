// The server end to end on loopback: real UDP/TCP sockets, a fake upstream of the test's own
// (UDP, and TCP for truncated answers), forwarding, the cache, truncation and error replies.
#include "server.h"

#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace mk8s::dns {
namespace {

int Bind(int type, uint16_t* port) {
  const int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(*port);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  if (type == SOCK_STREAM) listen(fd, 16);
  socklen_t n = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &n);
  *port = ntohs(a.sin_port);
  return fd;
}

// A UDP+TCP pair on the same free port.
std::pair<int, int> BindPair(uint16_t* port) {
  for (int attempt = 0; attempt < 20; ++attempt) {
    *port = 0;
    const int udp = Bind(SOCK_DGRAM, port);
    const int tcp = Bind(SOCK_STREAM, port);
    if (tcp >= 0) return {udp, tcp};
    close(udp);
  }
  return {-1, -1};
}

std::vector<uint8_t> Query(const std::string& name, uint16_t type, bool edns = false,
                           uint16_t id = 77) {
  Writer w;
  Header h;
  h.id = id;
  h.flags = kFlagRD;
  w.WriteHeader(h);
  w.WriteQuestion(Question{*SplitName(name), type, kClassIN});
  if (edns) w.WriteOpt(1232);
  w.SetCounts(1, 0, 0, edns ? 1 : 0);
  return w.Take();
}

std::vector<uint8_t> UdpExchange(uint16_t port, const std::vector<uint8_t>& query) {
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  send(fd, query.data(), query.size(), 0);
  std::vector<uint8_t> buffer(65535);
  pollfd p{fd, POLLIN, 0};
  ssize_t n = -1;
  if (poll(&p, 1, 5000) == 1) n = recv(fd, buffer.data(), buffer.size(), 0);
  close(fd);
  buffer.resize(n < 0 ? 0 : static_cast<size_t>(n));
  return buffer;
}

std::vector<uint8_t> TcpExchange(uint16_t port, const std::vector<uint8_t>& query) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::vector<uint8_t> out;
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
    std::vector<uint8_t> framed = {static_cast<uint8_t>(query.size() >> 8),
                                   static_cast<uint8_t>(query.size())};
    framed.insert(framed.end(), query.begin(), query.end());
    send(fd, framed.data(), framed.size(), MSG_NOSIGNAL);
    uint8_t prefix[2];
    if (recv(fd, prefix, 2, MSG_WAITALL) == 2) {
      out.resize(static_cast<size_t>(prefix[0] << 8 | prefix[1]));
      if (recv(fd, out.data(), out.size(), MSG_WAITALL) != static_cast<ssize_t>(out.size()))
        out.clear();
    }
  }
  close(fd);
  return out;
}

// The test's own upstream: "example.com" A 93.184.216.34 (TTL 60); "big.example" is 40 A
// records, truncated over UDP; everything else NXDOMAIN. Counts the queries it answers.
class FakeUpstream {
 public:
  FakeUpstream() {
    std::tie(udp_, tcp_) = BindPair(&port_);
    thread_ = std::thread([this] { Run(); });
  }
  ~FakeUpstream() {
    stop_ = true;
    thread_.join();
    close(udp_);
    close(tcp_);
  }
  uint16_t port() const { return port_; }
  std::atomic<int> udp_queries{0}, tcp_queries{0};

 private:
  std::vector<uint8_t> Answer(const std::vector<uint8_t>& query, bool tcp) {
    const std::optional<Message> q = Parse(query);
    Header h = q->header;
    h.flags = kFlagQR | kFlagRD | kFlagRA;
    const std::string name = LookupKey(q->questions[0].name);
    std::vector<Rr> answers;
    if (name == "example.com") {
      answers.push_back(Rr{name, kTypeA, 60, std::array<uint8_t, 4>{93, 184, 216, 34}});
    } else if (name == "big.example") {
      if (!tcp) h.set(kFlagTC, true);
      for (uint8_t i = 0; i < 40 && tcp; ++i) {
        answers.push_back(Rr{name, kTypeA, 60, std::array<uint8_t, 4>{192, 0, 2, i}});
      }
    } else {
      h.set_rcode(kNxDomain);
    }
    Writer w;
    w.WriteHeader(h);
    w.WriteQuestion(q->questions[0]);
    for (const Rr& rr : answers) w.WriteRr(rr);
    w.SetCounts(1, static_cast<uint16_t>(answers.size()), 0, 0);
    return w.Take();
  }
  void Run() {
    std::vector<uint8_t> buffer(65535);
    while (!stop_) {
      pollfd fds[2] = {{udp_, POLLIN, 0}, {tcp_, POLLIN, 0}};
      if (poll(fds, 2, 50) <= 0) continue;  // 50 ms: re-checks stop_
      if (fds[0].revents) {
        sockaddr_in from{};
        socklen_t n = sizeof(from);
        const ssize_t got =
            recvfrom(udp_, buffer.data(), buffer.size(), 0, reinterpret_cast<sockaddr*>(&from), &n);
        if (got <= 0) continue;
        ++udp_queries;
        const auto reply = Answer({buffer.begin(), buffer.begin() + got}, false);
        sendto(udp_, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), n);
      }
      if (fds[1].revents) {
        const int c = accept4(tcp_, nullptr, nullptr, SOCK_CLOEXEC);
        uint8_t prefix[2];
        if (c >= 0 && recv(c, prefix, 2, MSG_WAITALL) == 2) {
          std::vector<uint8_t> query(static_cast<size_t>(prefix[0] << 8 | prefix[1]));
          if (recv(c, query.data(), query.size(), MSG_WAITALL) ==
              static_cast<ssize_t>(query.size())) {
            ++tcp_queries;
            const auto reply = Answer(query, true);
            std::vector<uint8_t> framed = {static_cast<uint8_t>(reply.size() >> 8),
                                           static_cast<uint8_t>(reply.size())};
            framed.insert(framed.end(), reply.begin(), reply.end());
            send(c, framed.data(), framed.size(), MSG_NOSIGNAL);
          }
        }
        if (c >= 0) close(c);
      }
    }
  }
  int udp_ = -1, tcp_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Service web;
    web.ns = "default";
    web.name = "web";
    web.cluster_ips = {"10.152.183.20"};
    web.ports = {{"http", "tcp", 80}};
    records_.UpsertService(web);
    Service many;  // a headless service too large for a 512-byte answer
    many.ns = "default";
    many.name = "many";
    many.headless = true;
    records_.UpsertService(many);
    Slice slice;
    slice.ns = "default";
    slice.name = "many-1";
    slice.service = "many";
    for (int i = 0; i < 60; ++i)
      slice.endpoints.push_back(Endpoint{{"10.2.0." + std::to_string(i)}, true, ""});
    records_.UpsertSlice(slice);
    resolver_ = std::make_unique<Resolver>(
        records_,
        std::make_unique<Forwarder>(std::vector<Upstream>{{"127.0.0.1", upstream_.port()}},
                                    ForwarderOptions{std::chrono::milliseconds(2000), 2}));
    auto [udp, tcp] = BindPair(&port_);
    ASSERT_GE(udp, 0);
    server_ = std::make_unique<Server>(*resolver_, udp, tcp);
    server_->Start();
  }
  void TearDown() override { server_->Stop(); }

  FakeUpstream upstream_;
  ClusterRecords records_{ZoneConfig{}};
  std::unique_ptr<Resolver> resolver_;
  std::unique_ptr<Server> server_;
  uint16_t port_ = 0;
};

TEST_F(ServerTest, AnswersClusterNamesOverUdpAndTcp) {
  EXPECT_TRUE(server_->healthy());
  for (bool tcp : {false, true}) {
    const auto q = Query("WEB.default.svc.cluster.local", kTypeA);
    const auto reply = tcp ? TcpExchange(port_, q) : UdpExchange(port_, q);
    const std::optional<Message> m = Parse(reply);
    ASSERT_TRUE(m) << "tcp=" << tcp;
    EXPECT_EQ(m->header.id, 77);
    EXPECT_TRUE(m->header.aa());
    EXPECT_EQ(m->header.rcode(), kNoError);
    ASSERT_EQ(m->answers.size(), 1u);
    EXPECT_EQ(m->answers[0].name[0], "WEB");
    EXPECT_EQ(reply[m->answers[0].rdata_offset], 10);
  }
  const auto nx = Parse(UdpExchange(port_, Query("gone.default.svc.cluster.local", kTypeA)));
  ASSERT_TRUE(nx);
  EXPECT_EQ(nx->header.rcode(), kNxDomain);
  ASSERT_EQ(nx->authority.size(), 1u);
  EXPECT_EQ(nx->authority[0].type, kTypeSOA);
}

// Each query from a fresh socket (a new source port): the SO_REUSEPORT group spreads them over
// both UDP workers' sockets, and every one is answered.
TEST_F(ServerTest, EveryUdpWorkerAnswers) {
  for (uint16_t id = 1; id <= 40; ++id) {
    const auto m =
        Parse(UdpExchange(port_, Query("web.default.svc.cluster.local", kTypeA, false, id)));
    ASSERT_TRUE(m) << "query " << id;
    EXPECT_EQ(m->header.id, id);
    EXPECT_EQ(m->answers.size(), 1u);
  }
}

// On a wildcard socket the replies carry the address each query was sent to (IP_PKTINFO).
TEST_F(ServerTest, WildcardSocketAnswers) {
  const int udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  const int tcp = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in any{};
  any.sin_family = AF_INET;
  ASSERT_EQ(bind(udp, reinterpret_cast<sockaddr*>(&any), sizeof(any)), 0);
  socklen_t n = sizeof(any);
  getsockname(udp, reinterpret_cast<sockaddr*>(&any), &n);
  const uint16_t port = ntohs(any.sin_port);
  Server wildcard(*resolver_, udp, tcp, ServerOptions{.udp_threads = 2, .forward_threads = 1});
  wildcard.Start();
  for (uint16_t id = 1; id <= 8; ++id) {
    const auto m =
        Parse(UdpExchange(port, Query("web.default.svc.cluster.local", kTypeA, false, id)));
    ASSERT_TRUE(m) << "query " << id;
    EXPECT_EQ(m->header.id, id);
  }
  wildcard.Stop();
}

TEST_F(ServerTest, LargeAnswersAreTruncatedOverUdpOnly) {
  auto m = Parse(UdpExchange(port_, Query("many.default.svc.cluster.local", kTypeA)));
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->header.tc());
  EXPECT_TRUE(m->answers.empty());
  m = Parse(UdpExchange(port_, Query("many.default.svc.cluster.local", kTypeA, true)));
  ASSERT_TRUE(m);
  EXPECT_FALSE(m->header.tc());  // 60 x 16 bytes fit in 1232
  EXPECT_EQ(m->answers.size(), 60u);
  m = Parse(TcpExchange(port_, Query("many.default.svc.cluster.local", kTypeA)));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->answers.size(), 60u);
}

TEST_F(ServerTest, ForwardsCachesAndFallsBackToTcp) {
  auto m = Parse(UdpExchange(port_, Query("example.com", kTypeA)));
  ASSERT_TRUE(m);
  EXPECT_FALSE(m->header.aa());
  ASSERT_EQ(m->answers.size(), 1u);
  EXPECT_EQ(m->answers[0].ttl, 60u);
  EXPECT_EQ(upstream_.udp_queries.load(), 1);
  // Cached: the upstream is not asked again, the id is the client's.
  m = Parse(UdpExchange(port_, Query("Example.COM", kTypeA, false, 99)));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->header.id, 99);
  EXPECT_EQ(m->questions[0].name[0], "Example");
  EXPECT_LE(m->answers[0].ttl, 30u) << "the cache serves a name for at most 30 s";
  EXPECT_EQ(upstream_.udp_queries.load(), 1);
  EXPECT_EQ(resolver_->stats().cache_hits.load(), 1u);
  // Truncated upstream answer: retried over TCP; the client gets TC (its 512 bytes are too few)
  // and then the full answer over TCP from the cache.
  m = Parse(UdpExchange(port_, Query("big.example", kTypeA)));
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->header.tc());
  EXPECT_EQ(upstream_.tcp_queries.load(), 1);
  m = Parse(TcpExchange(port_, Query("big.example", kTypeA)));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->answers.size(), 40u);
  // NXDOMAIN passes through.
  m = Parse(UdpExchange(port_, Query("nothing.example", kTypeA)));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->header.rcode(), kNxDomain);
}

TEST_F(ServerTest, ErrorsAndDrops) {
  // Garbage with a header: FORMERR with the same id.
  std::vector<uint8_t> junk = {0xAB, 0xCD, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0xC0, 0x0C};
  auto reply = UdpExchange(port_, junk);
  std::optional<Header> h;
  Parse(reply, nullptr, &h);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->id, 0xABCD);
  EXPECT_EQ(h->rcode(), kFormErr);
  // A response is never answered; a short packet neither. The server keeps serving.
  auto response = Query("web.default.svc.cluster.local", kTypeA);
  response[2] |= 0x80;
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port_);
  sendto(fd, response.data(), response.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  sendto(fd, "x", 1, 0, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  close(fd);
  // NOTIMP for another opcode, BADVERS for EDNS version 1.
  auto notify = Query("web.default.svc.cluster.local", kTypeA);
  notify[2] = 0x20;  // opcode 4
  Parse(UdpExchange(port_, notify), nullptr, &h);
  EXPECT_EQ(h->rcode(), kNotImp);
  auto v1 = Query("web.default.svc.cluster.local", kTypeA, true);
  v1[v1.size() - 5] = 1;  // OPT TTL: the version byte
  const auto bad = Parse(UdpExchange(port_, v1));
  ASSERT_TRUE(bad);
  ASSERT_EQ(bad->additional.size(), 1u);
  EXPECT_EQ(bad->additional[0].ttl >> 24, 1u);  // extended rcode: BADVERS
  EXPECT_TRUE(Parse(UdpExchange(port_, Query("web.default.svc.cluster.local", kTypeA))));
  EXPECT_GE(resolver_->stats().dropped.load(), 1u);
}

TEST(Forwarder, NoUpstreamAnswerIsServfail) {
  uint16_t dead = 0;
  const int fd = Bind(SOCK_DGRAM, &dead);  // bound, never read: the query times out
  ClusterRecords records{ZoneConfig{}};
  Resolver resolver(
      records, std::make_unique<Forwarder>(std::vector<Upstream>{{"127.0.0.1", dead}},
                                           ForwarderOptions{std::chrono::milliseconds(200), 1}));
  const auto query = Query("example.com", kTypeA);
  ASSERT_EQ(resolver.Answer(query, Resolver::Transport::kUdp).kind, Resolver::Outcome::kForward);
  const auto m = Parse(resolver.Forward(query, Resolver::Transport::kUdp));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->header.rcode(), kServFail);
  close(fd);
}

TEST(Upstreams, ParseArgumentsAndResolvConf) {
  std::string error;
  auto list = ParseUpstreams("1.2.3.4:5353,8.8.8.8", &error);
  ASSERT_TRUE(list) << error;
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].port, 5353);
  EXPECT_EQ((*list)[1].text(), "8.8.8.8:53");
  EXPECT_FALSE(ParseUpstreams("1.2.3.4:0", &error));
  EXPECT_FALSE(ParseUpstreams("example.com", &error));
  const auto conf = UpstreamsFromResolvConf(
      "# comment\nsearch lan\nnameserver 192.0.2.53\nnameserver fe80::1\nnameserver 10.0.0.1\n");
  ASSERT_EQ(conf.size(), 2u);
  EXPECT_EQ(conf[0].host, "192.0.2.53");
}

}  // namespace
}  // namespace mk8s::dns
