#include "kubelet/image_gc.h"

#include <spdlog/spdlog.h>
#include <sys/statvfs.h>

#include <algorithm>

#include "runtime/cri_client.h"

namespace mk8s::kubelet {

Status ValidateImageGcOptions(const ImageGcOptions& options) {
  if (options.high_threshold_percent < 0 || options.high_threshold_percent > 100) {
    return Status(Code::kInvalidArgument, "--image-gc-high-threshold must be within 0-100");
  }
  if (options.low_threshold_percent < 0 || options.low_threshold_percent > 100) {
    return Status(Code::kInvalidArgument, "--image-gc-low-threshold must be within 0-100");
  }
  if (options.low_threshold_percent > options.high_threshold_percent) {
    return Status(Code::kInvalidArgument,
                  "--image-gc-low-threshold (" + std::to_string(options.low_threshold_percent) +
                      ") must not be above --image-gc-high-threshold (" +
                      std::to_string(options.high_threshold_percent) + ")");
  }
  return Status::Ok();
}

std::vector<std::string> ChooseImagesToRemove(const std::vector<TrackedImage>& images,
                                              uint64_t bytes_to_free,
                                              std::chrono::steady_clock::time_point now,
                                              std::chrono::seconds minimum_age) {
  std::vector<const TrackedImage*> candidates;
  for (const TrackedImage& image : images) {
    if (image.in_use || image.protected_image) continue;
    if (now - image.first_seen < minimum_age) continue;
    candidates.push_back(&image);
  }
  std::sort(candidates.begin(), candidates.end(), [](const TrackedImage* a, const TrackedImage* b) {
    if (a->last_used != b->last_used) return a->last_used < b->last_used;
    if (a->size != b->size) return a->size > b->size;
    return a->id < b->id;
  });
  std::vector<std::string> chosen;
  uint64_t freed = 0;
  for (const TrackedImage* image : candidates) {
    if (freed >= bytes_to_free) break;
    chosen.push_back(image->id);
    freed += image->size;
  }
  return chosen;
}

ImageGarbageCollector::ImageGarbageCollector(ImageGcOptions options,
                                             std::shared_ptr<runtime::CriClient> cri)
    : options_(std::move(options)), cri_(std::move(cri)) {}

ImageGarbageCollector::~ImageGarbageCollector() { Stop(); }

void ImageGarbageCollector::Start() {
  if (options_.high_threshold_percent >= 100) return;
  loop_.Start(options_.period, PeriodicLoop::FirstPass::kAfterOnePeriod, [this] {
    auto pass = RunOnce();
    if (!pass.ok()) spdlog::warn("kubelet: image garbage collection: {}", pass.status().message());
  });
}

void ImageGarbageCollector::Stop() { loop_.Stop(); }

Result<ImageGarbageCollector::Pass> ImageGarbageCollector::RunOnce() { return Collect(false); }

Result<ImageGarbageCollector::Pass> ImageGarbageCollector::FreeUnused() { return Collect(true); }

Result<ImageGarbageCollector::Pass> ImageGarbageCollector::Collect(bool all_unused) {
  std::lock_guard pass_lock(pass_mu_);
  const auto now = std::chrono::steady_clock::now();
  auto listed = cri_->ListImages();
  if (!listed.ok()) return listed.status();
  auto containers = cri_->ListContainers();
  if (!containers.ok()) return containers.status();
  std::set<std::string> used;
  for (const auto& container : *containers) {
    used.insert(container.image_ref());
    used.insert(container.image().image());
  }
  std::map<std::string, TrackedImage> current;
  for (const auto& image : *listed) {
    TrackedImage tracked;
    if (auto known = images_.find(image.id()); known != images_.end()) {
      tracked = known->second;
    } else {
      tracked.first_seen = tracked.last_used = now;
    }
    tracked.id = image.id();
    tracked.size = image.size();
    tracked.in_use = used.count(image.id()) != 0;
    tracked.protected_image = image.pinned();
    for (const std::string& tag : image.repo_tags()) {
      tracked.in_use = tracked.in_use || used.count(tag) != 0;
      tracked.protected_image = tracked.protected_image || options_.protected_refs.count(tag) != 0;
    }
    if (tracked.in_use) tracked.last_used = now;
    current[tracked.id] = tracked;
  }
  images_ = std::move(current);  // images gone from the runtime are forgotten

  Pass pass;
  struct statvfs fs {};
  if (options_.imagefs_dir.empty() || statvfs(options_.imagefs_dir.c_str(), &fs) != 0 ||
      fs.f_blocks == 0) {
    return Status(Code::kUnavailable, "cannot read the image filesystem's usage at " +
                                          options_.imagefs_dir);
  }
  const uint64_t capacity = static_cast<uint64_t>(fs.f_blocks) * fs.f_frsize;
  const uint64_t available = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
  pass.usage_percent = static_cast<int>(100 - available * 100 / capacity);
  if (!all_unused && pass.usage_percent < options_.high_threshold_percent) {
    shortfall_reported_ = false;
    return pass;
  }

  const uint64_t wanted_available = capacity * (100 - options_.low_threshold_percent) / 100;
  const uint64_t to_free = all_unused                      ? UINT64_MAX
                           : wanted_available > available ? wanted_available - available
                                                          : 0;
  std::vector<TrackedImage> snapshot;
  for (const auto& [id, image] : images_) snapshot.push_back(image);
  for (const std::string& id : ChooseImagesToRemove(snapshot, to_free, now, options_.minimum_age)) {
    if (Status removed = cri_->RemoveImage(id); !removed.ok()) {
      spdlog::warn("kubelet: image garbage collection: removing {}: {}", id, removed.message());
      continue;
    }
    pass.removed.push_back(id);
    pass.freed_bytes += images_[id].size;
    images_.erase(id);
  }
  if (all_unused) {
    if (!pass.removed.empty()) {
      spdlog::info("kubelet: removed {} unused image(s), {} bytes, to relieve disk pressure",
                   pass.removed.size(), pass.freed_bytes);
    }
  } else if (pass.freed_bytes < to_free) {
    // Said once while nothing changes (the next passes would repeat it every period).
    if (shortfall_reported_ && pass.removed.empty()) return pass;
    shortfall_reported_ = true;
    spdlog::warn("kubelet: image filesystem at {}% (high threshold {}%): freed {} of the {} bytes "
                 "wanted; the remaining images are in use, protected or younger than {} s",
                 pass.usage_percent, options_.high_threshold_percent, pass.freed_bytes, to_free,
                 options_.minimum_age.count());
  } else {
    spdlog::info("kubelet: image filesystem at {}%: removed {} unused image(s), {} bytes",
                 pass.usage_percent, pass.removed.size(), pass.freed_bytes);
  }
  return pass;
}

}  // namespace mk8s::kubelet
