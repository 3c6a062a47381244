// The blocking write forms, built on the asynchronous ones.
#include <future>

#include "store/store.h"

namespace mk8s::store {
namespace {

// Runs `start(callback)` and waits for the callback's outcome.
template <typename Start>
WriteOutcome Wait(Start start) {
  auto promise = std::make_shared<std::promise<WriteOutcome>>();
  auto future = promise->get_future();
  start([promise](WriteOutcome outcome) { promise->set_value(std::move(outcome)); });
  return future.get();
}

}  // namespace

WriteOutcome Store::Create(std::string key, std::string value) {
  return Wait([&](WriteCallback cb) { CreateAsync(std::move(key), std::move(value), cb); });
}

WriteOutcome Store::Update(std::string key, std::string value, int64_t expected_mod_rev) {
  return Wait([&](WriteCallback cb) {
    UpdateAsync(std::move(key), std::move(value), expected_mod_rev, cb);
  });
}

WriteOutcome Store::Delete(std::string key, int64_t expected_mod_rev) {
  return Wait([&](WriteCallback cb) { DeleteAsync(std::move(key), expected_mod_rev, cb); });
}

}  // namespace mk8s::store
