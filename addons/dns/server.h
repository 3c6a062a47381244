// The DNS server's sockets and threads.
//
// Threads (all started by Start, all joined by Stop):
//   - `udp_threads` UDP workers, each on its own socket of an SO_REUSEPORT group Start makes on
//     the UDP socket's address (see ServerOptions::reuse_port), else all on the one socket. Each
//     blocks in recvmmsg with MSG_WAITFORONE (the kernel wakes one waiting worker per datagram,
//     no herd), takes up to kUdpBatch datagrams of at most kUdpMaxQuery bytes (longer ones are
//     dropped), answers cluster and cached names inline, sends the replies (sendmsg for one,
//     else one sendmmsg), and queues the rest for the forward workers (bounded; a full queue
//     drops the query, the client retries).
//   - `forward_threads` forward workers block on upstreams and send the answers back.
//   - one TCP acceptor; each connection gets its own thread (at most max_tcp_connections; more
//     are closed at once), which serves length-prefixed queries until the client closes, an
//     idle timeout passes, or Stop.
// Every other wait polls an eventfd that Stop makes readable; Stop shuts the UDP sockets'
// receive sides down to wake the UDP workers (each wait is also bounded by a 2 s receive
// timeout), so Stop is prompt.
//
// Ownership: the Server owns both listening fds from construction and the UDP sockets it adds
// (all closed by Stop/destructor)
// and borrows the Resolver, which must outlive it.
#pragma once

#include <netinet/in.h>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "resolver.h"

namespace mk8s::dns {

struct ServerOptions {
  int udp_threads = 2;
  int forward_threads = 4;
  // Give each UDP worker its own socket in an SO_REUSEPORT group on the given socket's address
  // (the kernel then keeps each client's flow on one worker, as Knot does); when that cannot be
  // set up, the workers share the given socket.
  bool reuse_port = true;
  size_t forward_queue = 1024;
  size_t max_tcp_connections = 64;
  std::chrono::milliseconds tcp_idle{10000};
};

class Server {
 public:
  Server(Resolver& resolver, int udp_fd, int tcp_fd, ServerOptions options = {});
  ~Server();  // Stop()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Starts the threads. Throws std::runtime_error if the sockets cannot be set up.
  void Start();
  // Stops and joins every thread and closes the sockets. Idempotent.
  void Stop();

  // True while every worker thread is running (none has died on an error).
  bool healthy() const;
  size_t tcp_connections() const { return tcp_connections_.load(); }

 private:
  // Where a UDP query came from and which local address it was sent to. Replies leave from
  // that address (IP_PKTINFO): a query DNATed by kube-proxy from the Service IP to a node IP must
  // be answered from the node IP, or conntrack cannot map the reply back and the client (a pod
  // on a bridge whose own address the kernel would pick) drops it. A socket bound to one address
  // has no choice to make, so there the kernel is not asked (has_local stays false).
  struct UdpPeer {
    sockaddr_in client{};
    in_addr local{};
    bool has_local = false;
  };
  struct Pending {
    std::vector<uint8_t> query;
    UdpPeer peer;
  };
  struct Connection {
    int fd = -1;
    std::thread thread;
    std::atomic<bool> done{false};
  };

  static constexpr size_t kUdpBatch = 32;
  static constexpr size_t kUdpMaxQuery = 4096;  // a DNS query is far smaller

  // Fills `message` for a sendmsg/sendmmsg of `reply` to `peer` (from peer.local when known);
  // `iov` and `control` must outlive the send.
  static void PrepareSend(std::span<const uint8_t> reply, const UdpPeer& peer, msghdr* message,
                          iovec* iov, char* control, size_t control_size);
  void SendUdp(int fd, std::span<const uint8_t> reply, const UdpPeer& peer);
  // Blocking, with IP_PKTINFO (if pktinfo_), a large receive buffer and the receive timeout;
  // false on failure.
  bool PrepareUdpSocket(int fd) const;
  // Fills udp_fds_[1..udp_threads) with SO_REUSEPORT siblings of udp_fd_, or leaves it at one.
  void AddReusePortSockets();
  void UdpLoop(int fd);  // serves `fd` (one of udp_fds_) until Stop
  void ForwardLoop();
  void AcceptLoop();
  void ServeConnection(Connection* connection);
  void ReapConnections(bool all);
  bool Wait(int fd, short events, int timeout_ms) const;  // false on stop/timeout/error

  Resolver& resolver_;
  int udp_fd_;
  // IP_PKTINFO is only needed on a wildcard (0.0.0.0) socket; Start clears it otherwise.
  bool pktinfo_ = true;
  std::vector<int> udp_fds_;  // udp_fd_ first, then the sockets Start added (owned); see Start
  int tcp_fd_;
  const ServerOptions options_;
  int stop_fd_ = -1;  // eventfd; readable once Stop begins
  std::vector<std::thread> threads_;
  std::atomic<int> running_threads_{0};
  std::atomic<bool> started_{false};
  std::atomic<bool> stopping_{false};

  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<Pending> queue_;  // GUARDED_BY(queue_mu_)

  std::mutex connections_mu_;
  std::list<std::unique_ptr<Connection>> connections_;  // GUARDED_BY(connections_mu_)
  std::atomic<size_t> tcp_connections_{0};
};

}  // namespace mk8s::dns
