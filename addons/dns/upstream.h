// Forwarding to upstream resolvers and a small cache of their answers (CoreDNS's `forward` and
// `cache 30` as MicroK8s configures them).
//
// Threads: Forwarder::Forward and every ResponseCache method are thread-safe; Forward blocks
// for at most attempts x attempt_timeout. Upstream lists are immutable values.
#pragma once

#include <netinet/in.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "dns_wire.h"

namespace mk8s::dns {

using Clock = std::chrono::steady_clock;

struct Upstream {
  std::string host;  // IPv4 text
  uint16_t port = 53;
  std::string text() const { return host + ":" + std::to_string(port); }
};

// "1.2.3.4:5353,8.8.8.8" -> upstreams. nullopt (and *error) on a malformed item.
std::optional<std::vector<Upstream>> ParseUpstreams(std::string_view text, std::string* error);
// The IPv4 `nameserver` lines of a resolv.conf text (IPv6 ones are skipped).
std::vector<Upstream> UpstreamsFromResolvConf(std::string_view text);
// Reads `path` (usually /etc/resolv.conf). When it names only systemd-resolved's stub
// (127.0.0.53), the real servers from /run/systemd/resolve/resolv.conf are used instead, as
// MicroK8s does. Empty when nothing usable was found.
std::vector<Upstream> UpstreamsFromResolvConfFile(const std::string& path);

// Answers of upstreams by question, with TTLs counted down. Only NOERROR and NXDOMAIN answers
// that are not truncated are kept, for min(record TTLs, max_ttl) seconds.
class ResponseCache {
 public:
  explicit ResponseCache(size_t capacity = 10000, uint32_t max_ttl_seconds = 30)
      : capacity_(capacity), max_ttl_(max_ttl_seconds) {}

  static std::string KeyFor(const Question& question, bool dnssec_ok);
  // The cached answer with `id` and the question spelled as in `question`, TTLs reduced by its
  // age; nullopt on a miss.
  std::optional<std::vector<uint8_t>> Get(const std::string& key, uint16_t id,
                                          const Question& question, Clock::time_point now);
  void Put(const std::string& key, std::span<const uint8_t> response, Clock::time_point now);
  size_t size() const;

 private:
  struct Entry {
    std::vector<uint8_t> bytes;
    std::vector<std::pair<size_t, uint32_t>> ttls;  // offset of a TTL field, its stored value
    Clock::time_point stored;
    Clock::time_point expires;
  };
  const size_t capacity_;
  const uint32_t max_ttl_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;  // GUARDED_BY(mu_)
};

struct ForwarderOptions {
  std::chrono::milliseconds attempt_timeout{2000};  // per upstream tried
  int max_attempts = 3;                             // upstreams tried per query, at most
};

class Forwarder {
 public:
  Forwarder(std::vector<Upstream> upstreams, ForwarderOptions options = {});

  // Sends the client's `query` (whose only question is `question`) to the upstreams in turn,
  // over UDP and, when an answer comes back truncated, again over TCP (`tcp` true: TCP
  // directly). Returns the first matching answer with the client's id restored, or nullopt.
  std::optional<std::vector<uint8_t>> Forward(std::span<const uint8_t> query,
                                              const Question& question, bool tcp) const;

  const std::vector<Upstream>& upstreams() const { return upstreams_; }

 private:
  std::vector<Upstream> upstreams_;
  std::vector<sockaddr_in> addresses_;
  ForwarderOptions options_;
  mutable std::atomic<uint32_t> next_{0};  // round-robin start
};

}  // namespace mk8s::dns
