// ImageLocality: prefers nodes that already hold the pod's images, weighing each image's size by
// how widely it is spread (an image present everywhere says little), as upstream does.
#include <algorithm>

#include "scheduler/plugins/plugins.h"
#include "scheduler/scheduler_cache.h"

namespace mk8s::scheduler {
namespace {

constexpr int64_t kMB = 1024 * 1024;
constexpr int64_t kMinThreshold = 23 * kMB;
constexpr int64_t kMaxContainerThreshold = 1000 * kMB;

class ImageLocality final : public Plugin, public ScorePlugin {
 public:
  std::string_view Name() const override { return kImageLocality; }
  ScorePlugin* AsScore() override { return this; }

  bool PreScore(const CycleContext& ctx, std::span<const NodeInfo* const>) override {
    // Cache each image's spread once per cycle.
    spread_.clear();
    total_nodes_ = static_cast<double>(ctx.all_nodes.size());
    for (const std::string& img : ctx.pod.images) {
      spread_.push_back(ctx.cache.ImageNodeCountLocked(img));
    }
    return !ctx.pod.images.empty() && total_nodes_ > 0;
  }

  int64_t Score(const CycleContext& ctx, const NodeInfo& node) override {
    if (node.images().empty()) return 0;
    double sum = 0;
    for (size_t i = 0; i < ctx.pod.images.size(); ++i) {
      const ImageState* s = node.FindImage(ctx.pod.images[i]);
      if (s == nullptr) continue;
      sum += static_cast<double>(s->size_bytes) * (spread_[i] / total_nodes_);
    }
    int64_t max_threshold = kMaxContainerThreshold * static_cast<int64_t>(ctx.pod.images.size());
    double clamped =
        std::clamp(sum, static_cast<double>(kMinThreshold), static_cast<double>(max_threshold));
    return static_cast<int64_t>(kMaxNodeScore * (clamped - kMinThreshold) /
                                static_cast<double>(max_threshold - kMinThreshold));
  }

 private:
  std::vector<double> spread_;  // per cycle, per pod image
  double total_nodes_ = 0;
};

}  // namespace

std::unique_ptr<Plugin> NewImageLocality(const nlohmann::json&) {
  return std::make_unique<ImageLocality>();
}

}  // namespace mk8s::scheduler
