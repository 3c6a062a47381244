// FaultTransport: a client::Transport that passes requests on to another transport, except that
// the first `failures` requests matching a method and a path fragment are answered with a
// 500 InternalError instead (never reaching the server). For tests of how controllers handle a
// failed write: give controllers a Client over it through context().client.
//
// Threads: Send() may be called from any thread; the failure answer is delivered on the wrapped
// transport's callback thread, like any answer (it rides on a GET /version sent in its place).
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <utility>

#include "client/transport.h"

namespace mk8s::controllers::test {

class FaultTransport final : public client::Transport {
 public:
  FaultTransport(std::shared_ptr<client::Transport> inner, std::string method,
                 std::string path_fragment, int failures)
      : inner_(std::move(inner)),
        method_(std::move(method)),
        fragment_(std::move(path_fragment)),
        remaining_(failures) {}

  // How many requests were failed so far.
  int failed() const { return failed_.load(); }

  void Send(client::Request request, client::ResponseCallback done) override {
    if (request.method == method_ && request.path.find(fragment_) != std::string::npos &&
        remaining_.fetch_sub(1) > 0) {
      ++failed_;
      client::Request stand_in;
      stand_in.path = "/version";
      inner_->Send(std::move(stand_in), [done = std::move(done)](client::Response) {
        done(client::Response{
            500, "application/json",
            R"({"kind":"Status","apiVersion":"v1","status":"Failure",)"
            R"("message":"injected failure","reason":"InternalError","code":500})"});
      });
      return;
    }
    inner_->Send(std::move(request), std::move(done));
  }
  std::shared_ptr<client::StreamHandle> Stream(client::Request request,
                                               client::StreamCallbacks callbacks) override {
    return inner_->Stream(std::move(request), std::move(callbacks));
  }
  std::string Describe() const override { return "fault-injecting " + inner_->Describe(); }

 private:
  const std::shared_ptr<client::Transport> inner_;
  const std::string method_;
  const std::string fragment_;
  std::atomic<int> remaining_;
  std::atomic<int> failed_{0};
};

}  // namespace mk8s::controllers::test
