#include "upstream.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <random>
#include <sstream>

namespace mk8s::dns {
namespace {

// Closes a socket when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

uint16_t RandomId() {
  thread_local std::mt19937 engine{std::random_device{}()};
  return static_cast<uint16_t>(engine());
}

int RemainingMs(Clock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(left);
}

// Waits for `events` on fd until the deadline. False on timeout or error.
bool WaitFor(int fd, short events, Clock::time_point deadline) {
  while (true) {
    pollfd p{fd, events, 0};
    const int n = poll(&p, 1, RemainingMs(deadline));
    if (n > 0) return (p.revents & (events | POLLHUP | POLLERR)) != 0;
    if (n == 0) return false;
    if (errno != EINTR) return false;
  }
}

// True when `answer` is a response to `question` with `id`.
bool Matches(std::span<const uint8_t> answer, uint16_t id, const Question& question) {
  std::optional<Header> header;
  const std::optional<Message> parsed = Parse(answer, nullptr, &header);
  if (!header || header->id != id || !header->qr()) return false;
  // A FORMERR/NOTIMP may come without the question; accept it by id.
  if (!parsed || parsed->questions.empty()) return header->rcode() != kNoError;
  const Question& got = parsed->questions[0];
  return got.type == question.type && got.klass == question.klass &&
         LookupKey(got.name) == LookupKey(question.name);
}

std::optional<std::vector<uint8_t>> QueryUdp(const sockaddr_in& address,
                                             std::span<const uint8_t> query, uint16_t id,
                                             const Question& question, Clock::time_point deadline) {
  Fd fd(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return std::nullopt;
  if (connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    return std::nullopt;
  }
  if (send(fd.get(), query.data(), query.size(), 0) != static_cast<ssize_t>(query.size())) {
    return std::nullopt;
  }
  std::vector<uint8_t> buffer(65535);
  while (WaitFor(fd.get(), POLLIN, deadline)) {
    const ssize_t n = recv(fd.get(), buffer.data(), buffer.size(), 0);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return std::nullopt;  // e.g. ECONNREFUSED: nobody listens there
    }
    if (Matches({buffer.data(), static_cast<size_t>(n)}, id, question)) {
      buffer.resize(static_cast<size_t>(n));
      return buffer;
    }
    // Not ours (a late or spoofed answer): keep waiting.
  }
  return std::nullopt;
}

bool WriteAll(int fd, const uint8_t* data, size_t size, Clock::time_point deadline) {
  while (size > 0) {
    const ssize_t n = send(fd, data, size, MSG_NOSIGNAL);
    if (n > 0) {
      data += n;
      size -= static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!WaitFor(fd, POLLOUT, deadline)) return false;
    } else {
      return false;
    }
  }
  return true;
}

bool ReadAll(int fd, uint8_t* data, size_t size, Clock::time_point deadline) {
  while (size > 0) {
    const ssize_t n = recv(fd, data, size, 0);
    if (n > 0) {
      data += n;
      size -= static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!WaitFor(fd, POLLIN, deadline)) return false;
    } else {
      return false;  // closed early or failed
    }
  }
  return true;
}

std::optional<std::vector<uint8_t>> QueryTcp(const sockaddr_in& address,
                                             std::span<const uint8_t> query, uint16_t id,
                                             const Question& question, Clock::time_point deadline) {
  Fd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (fd.get() < 0) return std::nullopt;
  if (connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    if (errno != EINPROGRESS || !WaitFor(fd.get(), POLLOUT, deadline)) return std::nullopt;
    int error = 0;
    socklen_t length = sizeof(error);
    if (getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &length) != 0 || error != 0) {
      return std::nullopt;
    }
  }
  std::vector<uint8_t> framed;
  framed.reserve(query.size() + 2);
  framed.push_back(static_cast<uint8_t>(query.size() >> 8));
  framed.push_back(static_cast<uint8_t>(query.size()));
  framed.insert(framed.end(), query.begin(), query.end());
  if (!WriteAll(fd.get(), framed.data(), framed.size(), deadline)) return std::nullopt;
  uint8_t prefix[2];
  if (!ReadAll(fd.get(), prefix, 2, deadline)) return std::nullopt;
  std::vector<uint8_t> answer(static_cast<size_t>(prefix[0] << 8 | prefix[1]));
  if (!ReadAll(fd.get(), answer.data(), answer.size(), deadline)) return std::nullopt;
  if (!Matches(answer, id, question)) return std::nullopt;
  return answer;
}

}  // namespace

std::optional<std::vector<Upstream>> ParseUpstreams(std::string_view text, std::string* error) {
  std::vector<Upstream> out;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = text.find(',', start);
    std::string item(text.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
    item.erase(std::remove(item.begin(), item.end(), ' '), item.end());
    Upstream upstream;
    const size_t colon = item.find(':');
    upstream.host = item.substr(0, colon);
    if (colon != std::string::npos) {
      const std::string port = item.substr(colon + 1);
      const long value = port.empty() || port.size() > 5 ||
                                 port.find_first_not_of("0123456789") != std::string::npos
                             ? -1
                             : std::stol(port);
      if (value < 1 || value > 65535) {
        if (error != nullptr) *error = "upstream '" + item + "' has no valid port (1-65535)";
        return std::nullopt;
      }
      upstream.port = static_cast<uint16_t>(value);
    }
    if (!ParseIpv4(upstream.host)) {
      if (error != nullptr) *error = "upstream '" + item + "' is not IPV4[:PORT]";
      return std::nullopt;
    }
    out.push_back(std::move(upstream));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

std::vector<Upstream> UpstreamsFromResolvConf(std::string_view text) {
  std::vector<Upstream> out;
  std::istringstream lines{std::string(text)};
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string keyword, address;
    if (!(words >> keyword >> address) || keyword != "nameserver") continue;
    if (ParseIpv4(address)) out.push_back(Upstream{address, 53});
  }
  return out;
}

std::vector<Upstream> UpstreamsFromResolvConfFile(const std::string& path) {
  const auto read = [](const std::string& file) {
    std::ifstream in(file);
    std::stringstream text;
    text << in.rdbuf();
    return UpstreamsFromResolvConf(text.str());
  };
  std::vector<Upstream> upstreams = read(path);
  const bool only_stub =
      !upstreams.empty() && std::all_of(upstreams.begin(), upstreams.end(),
                                        [](const Upstream& u) { return u.host == "127.0.0.53"; });
  if (only_stub) {
    std::vector<Upstream> real = read("/run/systemd/resolve/resolv.conf");
    if (!real.empty()) return real;
  }
  return upstreams;
}

// ---------------------------------------------------------------- ResponseCache

std::string ResponseCache::KeyFor(const Question& question, bool dnssec_ok) {
  return LookupKey(question.name) + "/" + std::to_string(question.type) + "/" +
         std::to_string(question.klass) + (dnssec_ok ? "/do" : "");
}

std::optional<std::vector<uint8_t>> ResponseCache::Get(const std::string& key, uint16_t id,
                                                       const Question& question,
                                                       Clock::time_point now) {
  std::vector<uint8_t> bytes;
  {
    std::lock_guard lock(mu_);
    auto it = entries_.find(key);
    if (it == entries_.end()) return std::nullopt;
    if (now >= it->second.expires) {
      entries_.erase(it);
      return std::nullopt;
    }
    const Entry& entry = it->second;
    bytes = entry.bytes;
    const auto age = static_cast<uint32_t>(
        std::chrono::duration_cast<std::chrono::seconds>(now - entry.stored).count());
    for (const auto& [offset, ttl] : entry.ttls) {
      const uint32_t left = ttl > age ? ttl - age : 0;
      bytes[offset] = static_cast<uint8_t>(left >> 24);
      bytes[offset + 1] = static_cast<uint8_t>(left >> 16);
      bytes[offset + 2] = static_cast<uint8_t>(left >> 8);
      bytes[offset + 3] = static_cast<uint8_t>(left);
    }
  }
  bytes[0] = static_cast<uint8_t>(id >> 8);
  bytes[1] = static_cast<uint8_t>(id);
  // The question as this client spelled it (same key, so the same label lengths).
  size_t at = kHeaderSize;
  for (const std::string& label : question.name) {
    if (at + 1 + label.size() > bytes.size() || bytes[at] != label.size()) break;
    std::copy(label.begin(), label.end(), bytes.begin() + static_cast<long>(at + 1));
    at += 1 + label.size();
  }
  return bytes;
}

void ResponseCache::Put(const std::string& key, std::span<const uint8_t> response,
                        Clock::time_point now) {
  const std::optional<Message> message = Parse(response);
  if (!message || message->header.tc() ||
      (message->header.rcode() != kNoError && message->header.rcode() != kNxDomain)) {
    return;
  }
  Entry entry;
  uint32_t ttl = max_ttl_;
  bool any = false;
  for (const auto* section : {&message->answers, &message->authority, &message->additional}) {
    for (const Record& record : *section) {
      if (record.type == kTypeOPT) continue;
      entry.ttls.emplace_back(record.ttl_offset, std::min(record.ttl, max_ttl_));
      if (section != &message->additional) {
        ttl = std::min(ttl, record.ttl);
        any = true;
      }
    }
  }
  if (!any || ttl == 0) return;  // nothing says how long it holds
  entry.bytes.assign(response.begin(), response.end());
  entry.stored = now;
  entry.expires = now + std::chrono::seconds(ttl);
  std::lock_guard lock(mu_);
  if (entries_.size() >= capacity_ && entries_.count(key) == 0) {
    for (auto it = entries_.begin(); it != entries_.end();) {
      it = now >= it->second.expires ? entries_.erase(it) : std::next(it);
    }
    if (entries_.size() >= capacity_) entries_.erase(entries_.begin());
  }
  entries_[key] = std::move(entry);
}

size_t ResponseCache::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

// ---------------------------------------------------------------- Forwarder

Forwarder::Forwarder(std::vector<Upstream> upstreams, ForwarderOptions options)
    : upstreams_(std::move(upstreams)), options_(options) {
  for (const Upstream& upstream : upstreams_) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(upstream.port);
    inet_pton(AF_INET, upstream.host.c_str(), &address.sin_addr);
    addresses_.push_back(address);
  }
}

std::optional<std::vector<uint8_t>> Forwarder::Forward(std::span<const uint8_t> query,
                                                       const Question& question, bool tcp) const {
  if (addresses_.empty() || query.size() < kHeaderSize) return std::nullopt;
  const uint16_t client_id = static_cast<uint16_t>(query[0] << 8 | query[1]);
  std::vector<uint8_t> ours(query.begin(), query.end());
  const size_t count = addresses_.size();
  const size_t attempts = std::min(count, static_cast<size_t>(std::max(1, options_.max_attempts)));
  const size_t first = next_.fetch_add(1) % count;
  for (size_t i = 0; i < attempts; ++i) {
    const sockaddr_in& address = addresses_[(first + i) % count];
    const uint16_t id = RandomId();  // a fresh id per attempt: late answers never match
    ours[0] = static_cast<uint8_t>(id >> 8);
    ours[1] = static_cast<uint8_t>(id);
    const Clock::time_point deadline = Clock::now() + options_.attempt_timeout;
    std::optional<std::vector<uint8_t>> answer;
    if (!tcp) answer = QueryUdp(address, ours, id, question, deadline);
    if (tcp || (answer && answer->size() >= 3 && ((*answer)[2] & 0x02) != 0)) {  // TC bit
      if (auto full = QueryTcp(address, ours, id, question, deadline)) answer = std::move(full);
    }
    if (!answer) continue;
    (*answer)[0] = static_cast<uint8_t>(client_id >> 8);
    (*answer)[1] = static_cast<uint8_t>(client_id);
    return answer;
  }
  return std::nullopt;
}

}  // namespace mk8s::dns
