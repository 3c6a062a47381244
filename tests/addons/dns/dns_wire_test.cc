// The DNS codec: round trips, compression, limits, and hostile packets (a fuzz-style loop).
#include "dns_wire.h"

#include <gtest/gtest.h>

#include <random>

#include "records.h"
#include "resolver.h"

namespace mk8s::dns {
namespace {

std::vector<uint8_t> Query(const std::string& name, uint16_t type, uint16_t id = 0x1234,
                           bool edns = false) {
  Writer w;
  Header h;
  h.id = id;
  h.flags = kFlagRD;
  w.WriteHeader(h);
  w.WriteQuestion(Question{*SplitName(name), type, kClassIN});
  if (edns) w.WriteOpt(4096);
  w.SetCounts(1, 0, 0, edns ? 1 : 0);
  return w.Take();
}

TEST(DnsWire, QueryRoundTrip) {
  const std::vector<uint8_t> wire = Query("Web.Default.svc.cluster.local.", kTypeA, 7, true);
  std::string error;
  const std::optional<Message> m = Parse(wire, &error);
  ASSERT_TRUE(m) << error;
  EXPECT_EQ(m->header.id, 7);
  EXPECT_TRUE(m->header.rd());
  EXPECT_FALSE(m->header.qr());
  ASSERT_EQ(m->questions.size(), 1u);
  EXPECT_EQ(m->questions[0].name, (Labels{"Web", "Default", "svc", "cluster", "local"}));
  EXPECT_EQ(LookupKey(m->questions[0].name), "web.default.svc.cluster.local");
  EXPECT_EQ(m->questions[0].type, kTypeA);
  ASSERT_TRUE(m->edns);
  EXPECT_EQ(m->edns->udp_size, 4096);
}

TEST(DnsWire, AnswerUsesCompressionAndKeepsTheQuestionSpelling) {
  Writer w;
  Header h;
  h.id = 1;
  h.flags = kFlagQR | kFlagAA;
  w.WriteHeader(h);
  w.WriteQuestion(Question{*SplitName("WEB.default.svc.cluster.local"), kTypeSRV, kClassIN});
  w.WriteRr(Rr{"web.default.svc.cluster.local", kTypeSRV, 5,
               SrvData{0, 100, 80, "web.default.svc.cluster.local"}});
  w.WriteRr(Rr{"web.default.svc.cluster.local", kTypeA, 5, std::array<uint8_t, 4>{10, 0, 0, 1}});
  w.WriteRr(Rr{"cluster.local", kTypeSOA, 5,
               SoaData{"ns.dns.cluster.local", "hostmaster.cluster.local", 9, 1, 2, 3, 4}});
  w.SetCounts(1, 2, 1, 0);
  const std::vector<uint8_t> wire = w.Take();
  const std::optional<Message> m = Parse(wire);
  ASSERT_TRUE(m);
  ASSERT_EQ(m->answers.size(), 2u);
  // The owner is a pointer to the question: the client's spelling comes back.
  EXPECT_EQ(m->answers[0].name[0], "WEB");
  EXPECT_EQ(wire[m->answers[0].ttl_offset - 6], 0xC0);
  EXPECT_EQ(m->answers[1].rdlength, 4);
  EXPECT_EQ(m->authority[0].type, kTypeSOA);
  EXPECT_EQ(m->answers[0].ttl, 5u);
  // SRV target is written in full (RFC 2782): 2+2+2 + 31 bytes of name.
  EXPECT_EQ(m->answers[0].rdlength, 6 + 31);
}

TEST(DnsWire, SplitNameLimits) {
  EXPECT_EQ(SplitName("")->size(), 0u);
  EXPECT_EQ(SplitName(".")->size(), 0u);
  EXPECT_FALSE(SplitName("a..b"));
  EXPECT_FALSE(SplitName(std::string(64, 'a') + ".com"));
  EXPECT_TRUE(SplitName(std::string(63, 'a') + ".com"));
  std::string long_name;
  for (int i = 0; i < 50; ++i) long_name += "abcd.";
  EXPECT_TRUE(SplitName(long_name));  // 250 bytes on the wire + root
  EXPECT_FALSE(SplitName(long_name + "abcdefgh"));
  EXPECT_EQ(LookupKey({"A.b", "C"}), "a\\.b.c");  // a dot inside a label never aliases
}

TEST(DnsWire, RejectsCompressionLoops) {
  std::vector<uint8_t> wire = Query("a.b", kTypeA);
  // Question name replaced by a pointer to itself (offset 12).
  wire.resize(12);
  for (uint8_t b : std::vector<uint8_t>{0xC0, 0x0C, 0x00, 0x01, 0x00, 0x01}) wire.push_back(b);
  std::string error;
  EXPECT_FALSE(Parse(wire, &error));
  EXPECT_NE(error.find("backwards"), std::string::npos) << error;

  // Two names pointing at each other (12 -> 18 -> 12): the forward jump is refused.
  wire.resize(12);
  for (uint8_t b : std::vector<uint8_t>{0x01, 'a', 0xC0, 0x12, 0x00, 0x00, 0x01, 'b', 0xC0, 0x0C}) {
    wire.push_back(b);
  }
  EXPECT_FALSE(Parse(wire));
}

TEST(DnsWire, RejectsOverlongAndTruncated) {
  std::vector<uint8_t> header = Query("x", kTypeA);
  header.resize(12);
  std::vector<uint8_t> wire = header;
  for (int i = 0; i < 5; ++i) {  // 5 x 64 bytes > 255
    wire.push_back(63);
    wire.insert(wire.end(), 63, 'a');
  }
  wire.push_back(0);
  wire.insert(wire.end(), {0, 1, 0, 1});
  std::string error;
  EXPECT_FALSE(Parse(wire, &error));
  EXPECT_NE(error.find("255"), std::string::npos);

  wire = header;
  wire.push_back(0x40);  // reserved label type
  wire.insert(wire.end(), {0, 0, 1, 0, 1});
  EXPECT_FALSE(Parse(wire));

  wire = header;
  wire[5] = 0xFF;  // qdcount 255 with no room for them
  EXPECT_FALSE(Parse(wire));
  std::optional<Header> h;
  EXPECT_FALSE(Parse(std::vector<uint8_t>{1, 2, 3}, nullptr, &h));
  EXPECT_FALSE(h);
}

TEST(DnsWire, TwoOptRecordsAreAnError) {
  std::vector<uint8_t> wire = Query("x", kTypeA, 1, true);
  Writer w;
  w.WriteOpt(512);
  const std::vector<uint8_t> opt = w.Take();
  wire.insert(wire.end(), opt.begin(), opt.end());
  wire[11] = 2;
  EXPECT_FALSE(Parse(wire));
}

// Hostile input: random bytes, and mutations of valid queries and answers. The parser and the
// whole resolver pipeline must never crash, hang or read out of bounds (run under ASan in CI
// builds that enable it); every reply they produce must itself parse.
TEST(DnsWire, FuzzParserAndResolver) {
  ClusterRecords records(ZoneConfig{});
  Service web;
  web.ns = "default";
  web.name = "web";
  web.cluster_ips = {"10.152.183.20"};
  web.ports = {{"http", "tcp", 80}};
  records.UpsertService(web);
  Resolver resolver(records, std::make_unique<Forwarder>(std::vector<Upstream>{}));

  std::vector<std::vector<uint8_t>> seeds = {
      Query("web.default.svc.cluster.local", kTypeA),
      Query("_http._tcp.web.default.svc.cluster.local", kTypeSRV, 2, true),
      Query("20.183.152.10.in-addr.arpa", kTypePTR),
  };
  {
    ClusterRecords r(ZoneConfig{});
    r.UpsertService(web);
    const std::optional<Message> q = Parse(seeds[1]);
    seeds.push_back(
        EncodeAnswer(*q, r.Lookup("_http._tcp.web.default.svc.cluster.local", kTypeSRV), 65535));
  }
  std::mt19937 random(12345);
  size_t parsed = 0, replies = 0;
  for (int round = 0; round < 200000; ++round) {
    std::vector<uint8_t> packet;
    if (round % 4 == 0) {
      packet.resize(random() % 80);
      for (uint8_t& b : packet) b = static_cast<uint8_t>(random());
    } else {
      packet = seeds[random() % seeds.size()];
      const int flips = 1 + static_cast<int>(random() % 6);
      for (int i = 0; i < flips && !packet.empty(); ++i) {
        switch (random() % 4) {
          case 0:
            packet[random() % packet.size()] = static_cast<uint8_t>(random());
            break;
          case 1:
            packet.resize(random() % (packet.size() + 1));
            break;
          case 2:
            packet[random() % packet.size()] |= 0xC0;
            break;  // make pointers
          default:
            packet.insert(packet.begin() + static_cast<long>(random() % packet.size()),
                          static_cast<uint8_t>(random()));
        }
      }
      if (round % 3 == 0 && packet.size() > 2) packet[2] &= 0x7F;  // keep it a query (QR=0)
    }
    if (Parse(packet)) ++parsed;
    const Resolver::Outcome outcome = resolver.Answer(packet, Resolver::Transport::kUdp);
    if (outcome.kind == Resolver::Outcome::kReply) {
      ++replies;
      ASSERT_LE(outcome.reply.size(), 1232u);
      std::optional<Header> h;
      Parse(outcome.reply, nullptr, &h);
      ASSERT_TRUE(h);
      ASSERT_TRUE(h->qr());
    }
  }
  EXPECT_GT(parsed, 1000u);   // the mutations reach deep into the parser
  EXPECT_GT(replies, 1000u);  // and into the resolver
}

}  // namespace
}  // namespace mk8s::dns
