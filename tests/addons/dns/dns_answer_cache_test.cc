// The answer cache: replies keyed by the query after its id, served only under the serial they
// were built with, bounded; and through the Resolver: a change of a Service is answered at once.
#include "answer_cache.h"

#include <gtest/gtest.h>

#include "resolver.h"

namespace mk8s::dns {
namespace {

std::vector<uint8_t> Query(const std::string& name, uint16_t id, uint16_t flags = kFlagRD) {
  Writer w;
  Header h;
  h.id = id;
  h.flags = flags;
  w.WriteHeader(h);
  w.WriteQuestion(Question{*SplitName(name), kTypeA, kClassIN});
  w.SetCounts(1, 0, 0, 0);
  return w.Take();
}

std::string FirstA(std::span<const uint8_t> reply) {
  const auto m = Parse(reply);
  if (!m || m->answers.empty() || m->answers[0].rdlength != 4) return "";
  const uint8_t* ip = reply.data() + m->answers[0].rdata_offset;
  return std::to_string(ip[0]) + "." + std::to_string(ip[1]) + "." + std::to_string(ip[2]) + "." +
         std::to_string(ip[3]);
}

TEST(AnswerCache, ServesOnlyTheSameBytesUnderTheSameSerialWithTheCallersId) {
  AnswerCache cache;
  const auto query = Query("web.default.svc.cluster.local", 1);
  std::vector<uint8_t> reply = query;
  reply[2] |= 0x80;  // any bytes of at least a header do
  cache.Put(query, 7, reply);
  const auto hit = cache.Get(Query("web.default.svc.cluster.local", 0x1234), 7);
  ASSERT_TRUE(hit);
  EXPECT_EQ((*hit)[0], 0x12);
  EXPECT_EQ((*hit)[1], 0x34);
  EXPECT_TRUE(std::equal(hit->begin() + 2, hit->end(), reply.begin() + 2));
  EXPECT_FALSE(cache.Get(query, 8));                                         // records changed
  EXPECT_FALSE(cache.Get(Query("web.default.svc.cluster.local", 1, 0), 7));  // other flags
  EXPECT_FALSE(cache.Get(Query("WEB.default.svc.cluster.local", 1), 7));     // spelled apart
  EXPECT_FALSE(cache.Get(std::vector<uint8_t>(5, 0), 7));                    // not a query
}

TEST(AnswerCache, StaysWithinItsCapacity) {
  AnswerCache cache(64);
  for (int i = 0; i < 1000; ++i) {
    const auto query = Query("svc" + std::to_string(i) + ".default.svc.cluster.local", 1);
    cache.Put(query, 1, query);
  }
  EXPECT_LE(cache.size(), 64u);
  EXPECT_GT(cache.size(), 0u);
}

TEST(AnswerCache, TheResolverAnswersAChangedServiceAtOnce) {
  ClusterRecords records{ZoneConfig{}};
  Service web;
  web.ns = "default";
  web.name = "web";
  web.cluster_ips = {"10.152.183.20"};
  records.UpsertService(web);
  Resolver resolver(records, std::make_unique<Forwarder>(std::vector<Upstream>{}));
  const auto query = Query("web.default.svc.cluster.local", 9);
  for (int i = 0; i < 3; ++i) {
    const auto outcome = resolver.Answer(query, Resolver::Transport::kUdp);
    ASSERT_EQ(outcome.kind, Resolver::Outcome::kReply);
    EXPECT_EQ(FirstA(outcome.reply), "10.152.183.20");
  }
  EXPECT_EQ(resolver.stats().local_cached.load(), 2u);
  web.cluster_ips = {"10.152.183.30"};
  records.UpsertService(web);
  EXPECT_EQ(FirstA(resolver.Answer(query, Resolver::Transport::kUdp).reply), "10.152.183.30");
  records.RemoveService("default", "web");
  const auto gone = Parse(resolver.Answer(query, Resolver::Transport::kUdp).reply);
  ASSERT_TRUE(gone);
  EXPECT_EQ(gone->header.rcode(), kNxDomain);
  // TCP never goes through the cache (its replies are not truncated like UDP's).
  resolver.Answer(query, Resolver::Transport::kTcp);
  EXPECT_EQ(resolver.stats().local_cached.load(), 2u);
}

}  // namespace
}  // namespace mk8s::dns
