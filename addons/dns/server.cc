#include "server.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
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
  sockaddr_in bound{};
  socklen_t bound_length = sizeof(bound);
  if (getsockname(udp_fd_, reinterpret_cast<sockaddr*>(&bound), &bound_length) == 0 &&
      bound.sin_family == AF_INET && bound.sin_addr.s_addr != htonl(INADDR_ANY)) {
    pktinfo_ = false;  // bound to one address: replies can only leave from it (see UdpPeer)
  }
  if (!PrepareUdpSocket(udp_fd_)) throw std::runtime_error("cannot make the UDP socket blocking");
  udp_fds_.assign(1, udp_fd_);
  if (options_.reuse_port && options_.udp_threads > 1) AddReusePortSockets();
  running_threads_ = options_.udp_threads + options_.forward_threads + 1;
  for (int i = 0; i < options_.udp_threads; ++i) {
    const int fd = udp_fds_[static_cast<size_t>(i) % udp_fds_.size()];
    threads_.emplace_back([this, fd] { UdpLoop(fd); });
  }
  for (int i = 0; i < options_.forward_threads; ++i) {
    threads_.emplace_back([this] { ForwardLoop(); });
  }
  threads_.emplace_back([this] { AcceptLoop(); });
}

void Server::AddReusePortSockets() {
  sockaddr_in address{};
  socklen_t length = sizeof(address);
  int on = 1;
  if (getsockname(udp_fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0 ||
      address.sin_family != AF_INET ||
      setsockopt(udp_fd_, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0) {
    return;  // the workers share the one socket
  }
  for (int i = 1; i < options_.udp_threads; ++i) {
    const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    const bool ready = fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) == 0 &&
                       PrepareUdpSocket(fd) &&
                       bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
    if (!ready) {  // back to one shared socket, and no group others could join
      if (fd >= 0) close(fd);
      for (size_t k = 1; k < udp_fds_.size(); ++k) close(udp_fds_[k]);
      udp_fds_.resize(1);
      on = 0;
      setsockopt(udp_fd_, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on));
      return;
    }
    udp_fds_.push_back(fd);
  }
}

bool Server::PrepareUdpSocket(int fd) const {
  const int buffer = 1 << 20;  // absorb bursts (benchmarks, many clients)
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof(buffer));
  const int on = 1;
  if (pktinfo_ && setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &on, sizeof(on)) != 0) return false;
  // The UDP workers block in recvmmsg (see UdpLoop): the socket must be blocking, and a receive
  // timeout bounds each wait so a worker sees `stopping_` even if Stop's shutdown did not wake it.
  const int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) return false;
  const timeval receive_timeout{2, 0};  // a safety net only: idle workers wake every 2 s
  return setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &receive_timeout, sizeof(receive_timeout)) == 0;
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
  // Wakes the UDP workers blocked in recvmmsg: Linux wakes a socket's readers on shutdown even
  // when it is unconnected (shutdown then reports ENOTCONN, which is expected here).
  for (const int fd : udp_fds_) shutdown(fd, SHUT_RD);
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
  ReapConnections(true);
  for (size_t i = 1; i < udp_fds_.size(); ++i) close(udp_fds_[i]);
  udp_fds_.clear();
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

void Server::SendUdp(int fd, std::span<const uint8_t> reply, const UdpPeer& peer) {
  msghdr message;
  iovec iov;
  alignas(cmsghdr) char control[kPktinfoSpace];
  PrepareSend(reply, peer, &message, &iov, control, sizeof(control));
  sendmsg(fd, &message, MSG_DONTWAIT | MSG_NOSIGNAL);
}

void Server::UdpLoop(int fd) {
  Running running(running_threads_);
  pthread_setname_np(pthread_self(), "dns-udp");  // for top/perf; failure is harmless
  // One batch's buffers, reused: queries in, then replies out. The Outcomes keep their reply
  // buffers' capacity, so a cached answer is copied without an allocation.
  std::vector<uint8_t> buffers(kUdpBatch * kUdpMaxQuery);
  std::array<UdpPeer, kUdpBatch> peers;
  std::array<iovec, kUdpBatch> in_iov;
  std::array<mmsghdr, kUdpBatch> in;
  struct alignas(cmsghdr) Control {
    char bytes[kPktinfoSpace];
  };
  std::array<Control, kUdpBatch> controls;
  std::array<Resolver::Outcome, kUdpBatch> outcomes;
  std::array<UdpPeer*, kUdpBatch> reply_peers;
  std::array<iovec, kUdpBatch> out_iov;
  std::array<mmsghdr, kUdpBatch> out;
  const auto reset = [&](size_t i) {  // the fields recvmmsg changes, back to the full buffers
    in_iov[i] = iovec{buffers.data() + i * kUdpMaxQuery, kUdpMaxQuery};
    in[i] = mmsghdr{};
    in[i].msg_hdr.msg_name = &peers[i].client;
    in[i].msg_hdr.msg_namelen = sizeof(peers[i].client);
    in[i].msg_hdr.msg_iov = &in_iov[i];
    in[i].msg_hdr.msg_iovlen = 1;
    in[i].msg_hdr.msg_control = controls[i].bytes;
    in[i].msg_hdr.msg_controllen = pktinfo_ ? sizeof(controls[i].bytes) : 0;
  };
  for (size_t i = 0; i < kUdpBatch; ++i) reset(i);
  while (!stopping_.load(std::memory_order_relaxed)) {
    // Blocks until a datagram arrives, then takes whatever else is already queued (up to a
    // batch) without waiting: one syscall per wakeup, and the kernel wakes one waiting worker
    // per datagram (no herd, unlike poll). Stop wakes it with shutdown(SHUT_RD); the receive
    // timeout set in Start bounds the wait if that ever fails.
    const int received = recvmmsg(fd, in.data(), kUdpBatch, MSG_WAITFORONE, nullptr);
    if (received < 0 && (errno == EBADF || errno == ENOTSOCK || errno == EFAULT)) {
      return;  // the socket is unusable: end (healthy() turns false) rather than spin
    }
    if (received <= 0) continue;  // EAGAIN (the timeout), EINTR, a transient error, or Stop
    size_t answered = 0;
    for (size_t i = 0; i < static_cast<size_t>(received); ++i) {
      UdpPeer& peer = peers[i];
      peer.has_local = LocalAddress(&in[i].msg_hdr, &peer.local);
      const size_t length = in[i].msg_len;
      const bool truncated = (in[i].msg_hdr.msg_flags & MSG_TRUNC) != 0;
      reset(i);
      if (truncated) continue;  // longer than any query
      const std::span<const uint8_t> query(buffers.data() + i * kUdpMaxQuery, length);
      Resolver::Outcome& outcome = outcomes[answered];
      resolver_.Answer(query, Resolver::Transport::kUdp, &outcome);
      if (outcome.kind == Resolver::Outcome::kReply) {
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
    if (answered == 1) {  // the common case at one outstanding query: a plain sendmsg
      SendUdp(fd, outcomes[0].reply, *reply_peers[0]);
      continue;
    }
    // The queries' control space was read already: reuse it for the replies' pktinfo.
    for (size_t i = 0; i < answered; ++i) {
      out[i] = mmsghdr{};
      PrepareSend(outcomes[i].reply, *reply_peers[i], &out[i].msg_hdr, &out_iov[i],
                  controls[i].bytes, sizeof(controls[i].bytes));
    }
    for (size_t sent = 0; sent < answered;) {
      const int n = sendmmsg(fd, out.data() + sent, static_cast<unsigned>(answered - sent),
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

void Server::ForwardLoop() {
  Running running(running_threads_);
  pthread_setname_np(pthread_self(), "dns-forward");
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
    SendUdp(udp_fd_, reply, pending.peer);
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
