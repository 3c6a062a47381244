// Expectations: creates/deletes a controller has sent but its informer has not seen yet, per
// controller key, so a stale cache cannot make it act twice (upstream ControllerExpectations).
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <string>

#include "client/clock.h"

namespace mk8s::controllers {

// Pending creates/deletes per controller key, satisfied by informer events or a timeout (5 min
// on `clock`: the controller's, so tests move it). Thread-safe.
class Expectations {
 public:
  // `clock` (not owned, outlives this; nullptr = the real clock).
  explicit Expectations(client::Clock* clock = nullptr);

  void Expect(const std::string& key, int creates, int deletes);
  void CreationObserved(const std::string& key);
  void DeletionObserved(const std::string& key);
  // Creates/deletes that were expected but will never be observed (not sent, or failed).
  void LowerExpectations(const std::string& key, int creates, int deletes);
  // True when nothing is pending (or the expectation is older than the TTL).
  bool Satisfied(const std::string& key);
  void Forget(const std::string& key);

 private:
  struct Pending {
    int creates = 0;
    int deletes = 0;
    client::Clock::TimePoint since;
  };
  client::Clock* const clock_;
  std::mutex mu_;
  std::map<std::string, Pending> pending_;  // GUARDED_BY(mu_)
};

}  // namespace mk8s::controllers
