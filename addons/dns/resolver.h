// The query pipeline: parse a query, answer it from the cluster records or the cache, or hand it
// to the forwarder; always produce a well-formed reply or drop the packet.
//
//   too short / a response (QR set)      dropped (never answer answers: no reflection loops)
//   unparseable                           FORMERR (id kept, no question)
//   opcode other than QUERY               NOTIMP
//   not exactly one question              FORMERR
//   EDNS version > 0                      BADVERS
//   AXFR/IXFR in our zone                 REFUSED
//   cluster names                         authoritative answer (ClusterRecords::Lookup); over
//                                         UDP the finished reply is kept in an AnswerCache
//   anything else                         cache, else forward (SERVFAIL when no upstream answers)
// UDP replies larger than the client's limit (512, or its EDNS size capped at 1232) are sent
// truncated (TC, question only) so the client retries over TCP.
//
// Threads: every method is thread-safe. Answer never blocks; Forward blocks on the upstreams.
// The Resolver borrows `records` (which must outlive it) and owns its forwarder and cache.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "answer_cache.h"
#include "dns_wire.h"
#include "records.h"
#include "upstream.h"

namespace mk8s::dns {

constexpr uint16_t kOurUdpSize = 1232;  // the EDNS payload size we advertise and honour

struct ResolverStats {
  std::atomic<uint64_t> queries{0};
  std::atomic<uint64_t> local{0};         // answered from the cluster records
  std::atomic<uint64_t> local_cached{0};  // of those, a finished reply from the answer cache
  std::atomic<uint64_t> cache_hits{0};
  std::atomic<uint64_t> forwarded{0};  // sent upstream
  std::atomic<uint64_t> servfail{0};   // no upstream answered
  std::atomic<uint64_t> formerr{0};
  std::atomic<uint64_t> dropped{0};
};

class Resolver {
 public:
  enum class Transport { kUdp, kTcp };
  struct Outcome {
    enum Kind { kDrop, kReply, kForward } kind = kDrop;
    std::vector<uint8_t> reply;  // kReply only
  };

  Resolver(const ClusterRecords& records, std::unique_ptr<Forwarder> forwarder);

  // Quick: a reply, a drop, or kForward (then call Forward with the same bytes).
  Outcome Answer(std::span<const uint8_t> query, Transport transport);
  // The same into `*outcome`, whose reply buffer is reused (a cached answer to a repeated
  // question then costs no allocation): the UDP workers keep one Outcome per batch slot.
  void Answer(std::span<const uint8_t> query, Transport transport, Outcome* outcome);
  // Blocking: the upstream's answer (cached for the next time) or SERVFAIL. Empty: drop.
  std::vector<uint8_t> Forward(std::span<const uint8_t> query, Transport transport);

  const ResolverStats& stats() const { return stats_; }
  const Forwarder& forwarder() const { return *forwarder_; }

 private:
  const ClusterRecords& records_;
  const std::unique_ptr<Forwarder> forwarder_;
  ResponseCache cache_;
  AnswerCache answers_;  // UDP replies to cluster names (see answer_cache.h)
  ResolverStats stats_;
};

// Building replies (exposed for the tests). `query` is the parsed request.
std::vector<uint8_t> EncodeAnswer(const Message& query, const LookupResult& result, size_t limit);
std::vector<uint8_t> EncodeError(const Header& header, const Question* question, Rcode rcode,
                                 const std::optional<Edns>& edns);
// `reply` as is when it fits `limit`, else a truncated copy (TC, question only).
std::vector<uint8_t> FitReply(std::vector<uint8_t> reply, const Message& query, size_t limit);
// The size limit for a reply to `query` over `transport`.
size_t ReplyLimit(const Message& query, Resolver::Transport transport);

}  // namespace mk8s::dns
