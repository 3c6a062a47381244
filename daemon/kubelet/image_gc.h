// Image garbage collection, as upstream's kubelet does it: every `period` it looks at the image
// filesystem (containerd's root); when its usage reaches `high_threshold_percent` it removes
// images no container uses (running or exited), least recently used first, until usage is back
// at `low_threshold_percent`. Images first seen less than `minimum_age` ago, pinned images and
// the pause image are never removed. Defaults are upstream's (85 %, 80 %, 2 min, 5 min).
//
// Threads: Start() runs the loop on a thread of its own; Stop() joins it. RunOnce() and
// FreeUnused() may be called from any thread; passes run one at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"
#include "kubelet/periodic_loop.h"

namespace mk8s::runtime {
class CriClient;
}

namespace mk8s::kubelet {

struct ImageGcOptions {
  int high_threshold_percent = 85;  // 100 disables image GC
  int low_threshold_percent = 80;
  std::chrono::seconds minimum_age{120};
  std::chrono::seconds period{300};
  std::string imagefs_dir;          // where containerd keeps images (statvfs'd for usage)
  std::set<std::string> protected_refs;  // repo tags never removed (the pause image)
};

// Checks the thresholds: 0 <= low <= high <= 100. The message names the flag to fix.
Status ValidateImageGcOptions(const ImageGcOptions& options);

// One image as the collector tracks it.
struct TrackedImage {
  std::string id;
  uint64_t size = 0;
  std::chrono::steady_clock::time_point first_seen;
  std::chrono::steady_clock::time_point last_used;  // first_seen if never seen in use
  bool in_use = false;
  bool protected_image = false;  // pinned or the pause image
};

// Which images to remove to free `bytes_to_free`: unused, unprotected, older than
// `minimum_age` at `now`, least recently used first (then largest), stopping once enough is freed.
std::vector<std::string> ChooseImagesToRemove(const std::vector<TrackedImage>& images,
                                              uint64_t bytes_to_free,
                                              std::chrono::steady_clock::time_point now,
                                              std::chrono::seconds minimum_age);

class ImageGarbageCollector {
 public:
  ImageGarbageCollector(ImageGcOptions options, std::shared_ptr<runtime::CriClient> cri);
  ~ImageGarbageCollector();  // Stop()

  void Start();
  void Stop();

  struct Pass {
    int usage_percent = -1;         // of the image filesystem, before removing
    std::vector<std::string> removed;  // image ids
    uint64_t freed_bytes = 0;
  };
  // Refreshes the records (images listed, which ones containers use) and removes what the
  // thresholds call for. An error of one removal is logged and the next image tried.
  Result<Pass> RunOnce();
  // Removes every unused image the age and protection rules allow, whatever the thresholds say
  // (the eviction manager, under disk pressure, before it evicts a pod). Any thread.
  Result<Pass> FreeUnused();

 private:
  // One pass; `all_unused` ignores the thresholds. Passes are serialized by pass_mu_.
  Result<Pass> Collect(bool all_unused);

  const ImageGcOptions options_;
  std::shared_ptr<runtime::CriClient> cri_;
  std::mutex pass_mu_;  // one pass at a time (the loop and the eviction manager)
  std::map<std::string, TrackedImage> images_;  // by id. GUARDED_BY(pass_mu_)
  bool shortfall_reported_ = false;             // GUARDED_BY(pass_mu_)

  PeriodicLoop loop_;
};

}  // namespace mk8s::kubelet
