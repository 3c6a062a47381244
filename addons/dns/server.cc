#include "server.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace mk8s::dns {
namespace {

// Counts a worker thread out when it ends (Start counted it in before it was spawned, so
// healthy() is true from Start on).
class Running {
 public:
  explicit Running(std::atomic<int>& counter) : counter_(counter) {}
  ~Running() { --counter_; }
  Running(const Running&) = delete;
  Running& operator=(const Running&) = delete;

 private:
  std::atomic<int>& counter_;
};

}  // namespace

Server::Server(Resolver& resolver, int udp_fd, int tcp_fd, ServerOptions options)
    : resolver_(resolver), udp_fd_(udp_fd), tcp_fd_(tcp_fd), options_(options) {}

Server::~Server() {
  Stop();
  if (udp_fd_ >= 0) close(udp_fd_);
  if (tcp_fd_ >= 0) close(tcp_fd_);
}

void Server::Start() {
  if (started_.exchange(true)) return;
  stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd_ < 0) throw std::runtime_error("eventfd failed");
  if (fcntl(tcp_fd_, F_SETFL, fcntl(tcp_fd_, F_GETFL) | O_NONBLOCK) != 0) {
    throw std::runtime_error("cannot make the TCP socket non-blocking");
  }
  const int buffer = 1 << 20;  // absorb bursts (benchmarks, many clients)
  setsockopt(udp_fd_, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof(buffer));
  const int on = 1;
  setsockopt(udp_fd_, IPPROTO_IP, IP_PKTINFO, &on, sizeof(on));  // see UdpPeer
  running_threads_ = options_.udp_threads + options_.forward_threads + 1;
  for (int i = 0; i < options_.udp_threads; ++i) threads_.emplace_back([this] { UdpLoop(); });
  for (int i = 0; i < options_.forward_threads; ++i) {
    threads_.emplace_back([this] { ForwardLoop(); });
  }
  threads_.emplace_back([this] { AcceptLoop(); });
}

void Server::Stop() {
  if (!started_.load() || stopping_.exchange(true)) return;
  const uint64_t one = 1;
  if (write(stop_fd_, &one, sizeof(one)) < 0) {
    // An eventfd write only fails on overflow, which a single write cannot cause.
  }
  {
    std::lock_guard lock(queue_mu_);
    queue_cv_.notify_all();
  }
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
  ReapConnections(true);
  close(udp_fd_);
  close(tcp_fd_);
  close(stop_fd_);
  udp_fd_ = tcp_fd_ = stop_fd_ = -1;
}

bool Server::healthy() const {
  const int expected = options_.udp_threads + options_.forward_threads + 1;
  return started_.load() && !stopping_.load() && running_threads_.load() == expected;
}

bool Server::Wait(int fd, short events, int timeout_ms) const {
  while (true) {
    pollfd fds[2] = {{fd, events, 0}, {stop_fd_, POLLIN, 0}};
    const int n = poll(fds, 2, timeout_ms);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || fds[1].revents != 0) return false;
    return fds[0].revents != 0;
  }
}

namespace {

// The local address a datagram was sent to (IP_PKTINFO), if the kernel said.
bool LocalAddress(msghdr* message, in_addr* local) {
  for (cmsghdr* c = CMSG_FIRSTHDR(message); c != nullptr; c = CMSG_NXTHDR(message, c)) {
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
      in_pktinfo info{};
      std::memcpy(&info, CMSG_DATA(c), sizeof(info));
      *local = info.ipi_addr;
      return true;
    }
  }
  return false;
}

constexpr size_t kPktinfoSpace = CMSG_SPACE(sizeof(in_pktinfo));

}  // namespace

void Server::PrepareSend(std::span<const uint8_t> reply, const UdpPeer& peer, msghdr* message,
                         iovec* iov, char* control, size_t control_size) {
  *iov = iovec{const_cast<uint8_t*>(reply.data()), reply.size()};
  *message = msghdr{};
  message->msg_name = const_cast<sockaddr_in*>(&peer.client);
  message->msg_namelen = sizeof(peer.client);
  message->msg_iov = iov;
  message->msg_iovlen = 1;
  if (peer.has_local && control_size >= kPktinfoSpace) {
    std::memset(control, 0, kPktinfoSpace);
    message->msg_control = control;
    message->msg_controllen = kPktinfoSpace;
    cmsghdr* c = CMSG_FIRSTHDR(message);
    c->cmsg_level = IPPROTO_IP;
    c->cmsg_type = IP_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof(in_pktinfo));
    in_pktinfo info{};
    info.ipi_spec_dst = peer.local;  // the source address of the reply
    std::memcpy(CMSG_DATA(c), &info, sizeof(info));
  }
}

void Server::SendUdp(std::span<const uint8_t> reply, const UdpPeer& peer) {
  msghdr message;
  iovec iov;
  alignas(cmsghdr) char control[kPktinfoSpace];
  PrepareSend(reply, peer, &message, &iov, control, sizeof(control));
  sendmsg(udp_fd_, &message, MSG_DONTWAIT | MSG_NOSIGNAL);
}

void Server::UdpLoop() {
  Running running(running_threads_);
  // One batch's buffers, reused: queries in, then replies out.
  std::vector<uint8_t> buffers(kUdpBatch * kUdpMaxQuery);
  std::array<UdpPeer, kUdpBatch> peers;
  std::array<iovec, kUdpBatch> in_iov;
  std::array<mmsghdr, kUdpBatch> in;
  struct alignas(cmsghdr) Control {
    char bytes[kPktinfoSpace];
  };
  std::array<Control, kUdpBatch> controls;
  std::array<std::vector<uint8_t>, kUdpBatch> replies;
  std::array<UdpPeer*, kUdpBatch> reply_peers;
  std::array<iovec, kUdpBatch> out_iov;
  std::array<mmsghdr, kUdpBatch> out;
  while (!stopping_.load()) {
    if (!Wait(udp_fd_, POLLIN, -1)) continue;
    while (true) {  // drain what is there, a batch at a time
      for (size_t i = 0; i < kUdpBatch; ++i) {
        in_iov[i] = iovec{buffers.data() + i * kUdpMaxQuery, kUdpMaxQuery};
        in[i] = mmsghdr{};
        in[i].msg_hdr.msg_name = &peers[i].client;
        in[i].msg_hdr.msg_namelen = sizeof(peers[i].client);
        in[i].msg_hdr.msg_iov = &in_iov[i];
        in[i].msg_hdr.msg_iovlen = 1;
        in[i].msg_hdr.msg_control = controls[i].bytes;
        in[i].msg_hdr.msg_controllen = sizeof(controls[i].bytes);
      }
      const int received = recvmmsg(udp_fd_, in.data(), kUdpBatch, MSG_DONTWAIT, nullptr);
      if (received <= 0) break;  // EAGAIN (drained), EINTR, or a transient error: back to poll
      size_t answered = 0;
      for (int i = 0; i < received; ++i) {
        UdpPeer& peer = peers[i];
        peer.has_local = LocalAddress(&in[i].msg_hdr, &peer.local);
        if ((in[i].msg_hdr.msg_flags & MSG_TRUNC) != 0) continue;  // longer than any query
        const std::span<const uint8_t> query(buffers.data() + i * kUdpMaxQuery, in[i].msg_len);
        Resolver::Outcome outcome = resolver_.Answer(query, Resolver::Transport::kUdp);
        if (outcome.kind == Resolver::Outcome::kReply) {
          replies[answered] = std::move(outcome.reply);
          reply_peers[answered] = &peer;
          ++answered;
        } else if (outcome.kind == Resolver::Outcome::kForward) {
          std::lock_guard lock(queue_mu_);
          if (queue_.size() < options_.forward_queue) {
            queue_.push_back(Pending{std::vector<uint8_t>(query.begin(), query.end()), peer});
            queue_cv_.notify_one();
          }
        }
      }
      // The query buffers' control space is free again: reuse it for the replies' pktinfo.
      for (size_t i = 0; i < answered; ++i) {
        out[i] = mmsghdr{};
        PrepareSend(replies[i], *reply_peers[i], &out[i].msg_hdr, &out_iov[i], controls[i].bytes,
                    sizeof(controls[i].bytes));
      }
      for (size_t sent = 0; sent < answered;) {
        const int n = sendmmsg(udp_fd_, out.data() + sent, static_cast<unsigned>(answered - sent),
                               MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
          sent += static_cast<size_t>(n);
        } else if (n < 0 && errno == EINTR) {
          continue;
        } else {
          ++sent;  // this datagram cannot be sent (full buffer, unreachable): drop it, go on
        }
      }
    }
  }
}

void Server::ForwardLoop() {
  Running running(running_threads_);
  while (true) {
    Pending pending;
    {
      std::unique_lock lock(queue_mu_);
      queue_cv_.wait(lock, [&] { return stopping_.load() || !queue_.empty(); });
      if (stopping_.load()) return;
      pending = std::move(queue_.front());
      queue_.pop_front();
    }
    const std::vector<uint8_t> reply = resolver_.Forward(pending.query, Resolver::Transport::kUdp);
    if (reply.empty() || stopping_.load()) continue;
    SendUdp(reply, pending.peer);
  }
}

void Server::AcceptLoop() {
  Running running(running_threads_);
  while (!stopping_.load()) {
    ReapConnections(false);
    if (!Wait(tcp_fd_, POLLIN, 1000)) continue;  // wakes each second to reap finished ones
    const int fd = accept4(tcp_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) continue;
    if (tcp_connections_.load() >= options_.max_tcp_connections) {
      close(fd);
      continue;
    }
    auto connection = std::make_unique<Connection>();
    connection->fd = fd;
    Connection* raw = connection.get();
    ++tcp_connections_;
    std::lock_guard lock(connections_mu_);
    connections_.push_back(std::move(connection));
    raw->thread = std::thread([this, raw] { ServeConnection(raw); });
  }
}

void Server::ReapConnections(bool all) {
  std::list<std::unique_ptr<Connection>> finished;
  {
    std::lock_guard lock(connections_mu_);
    for (auto it = connections_.begin(); it != connections_.end();) {
      if (all || (*it)->done.load()) {
        finished.push_back(std::move(*it));
        it = connections_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& connection : finished) {
    if (connection->thread.joinable()) connection->thread.join();
  }
}

void Server::ServeConnection(Connection* connection) {
  const int fd = connection->fd;
  const int idle_ms = static_cast<int>(options_.tcp_idle.count());
  // Reads exactly `size` bytes, each wait bounded by the idle timeout.
  const auto read_full = [&](uint8_t* data, size_t size) {
    while (size > 0) {
      const ssize_t n = recv(fd, data, size, 0);
      if (n > 0) {
        data += n;
        size -= static_cast<size_t>(n);
      } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        if (!Wait(fd, POLLIN, idle_ms)) return false;
      } else {
        return false;
      }
    }
    return true;
  };
  const auto write_full = [&](const uint8_t* data, size_t size) {
    while (size > 0) {
      const ssize_t n = send(fd, data, size, MSG_NOSIGNAL);
      if (n > 0) {
        data += n;
        size -= static_cast<size_t>(n);
      } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        if (!Wait(fd, POLLOUT, idle_ms)) return false;
      } else {
        return false;
      }
    }
    return true;
  };
  std::vector<uint8_t> query;
  while (!stopping_.load()) {
    uint8_t prefix[2];
    if (!read_full(prefix, 2)) break;
    query.resize(static_cast<size_t>(prefix[0] << 8 | prefix[1]));
    if (query.empty() || !read_full(query.data(), query.size())) break;
    Resolver::Outcome outcome = resolver_.Answer(query, Resolver::Transport::kTcp);
    std::vector<uint8_t> reply;
    if (outcome.kind == Resolver::Outcome::kReply) {
      reply = std::move(outcome.reply);
    } else if (outcome.kind == Resolver::Outcome::kForward) {
      reply = resolver_.Forward(query, Resolver::Transport::kTcp);
    }
    if (reply.empty()) continue;  // dropped: keep reading
    std::vector<uint8_t> framed;
    framed.reserve(reply.size() + 2);
    framed.push_back(static_cast<uint8_t>(reply.size() >> 8));
    framed.push_back(static_cast<uint8_t>(reply.size()));
    framed.insert(framed.end(), reply.begin(), reply.end());
    if (!write_full(framed.data(), framed.size())) break;
  }
  close(fd);
  --tcp_connections_;
  connection->done.store(true);
}

}  // namespace mk8s::dns
