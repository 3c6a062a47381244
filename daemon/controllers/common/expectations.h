// Expectations: creates/deletes a controller has sent but its informer has not seen yet, per
// controller key, so a stale cache cannot make it act twice (upstream ControllerExpectations).
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <string>

namespace mk8s::controllers {

// Pending creates/deletes per controller key, satisfied by informer events or a timeout.
// Thread-safe.
class Expectations {
 public:
  void Expect(const std::string& key, int creates, int deletes);
  void CreationObserved(const std::string& key);
  void DeletionObserved(const std::string& key);
  // True when nothing is pending (or the expectation is older than the TTL).
  bool Satisfied(const std::string& key);
  void Forget(const std::string& key);

 private:
  struct Pending {
    int creates = 0;
    int deletes = 0;
    std::chrono::steady_clock::time_point since;
  };
  std::mutex mu_;
  std::map<std::string, Pending> pending_;  // GUARDED_BY(mu_)
};

}  // namespace mk8s::controllers
