#include "client/shared_informer_factory.h"

#include <vector>

namespace mk8s::client {

SharedInformerFactory::SharedInformerFactory(std::shared_ptr<Client> client,
                                             InformerOptions defaults)
    : client_(std::move(client)), defaults_(std::move(defaults)) {}

SharedInformerFactory::~SharedInformerFactory() { Shutdown(); }

Informer* SharedInformerFactory::For(const ResourceRef& resource, const std::string& ns,
                                     const std::string& label_selector,
                                     const std::string& field_selector) {
  std::lock_guard lock(mu_);
  Key key{resource.Name(), resource.version, ns, label_selector, field_selector};
  auto& slot = informers_[key];
  if (!slot) {
    InformerOptions options = defaults_;
    options.namespace_ = ns;
    options.label_selector = label_selector;
    options.field_selector = field_selector;
    slot = std::make_unique<Informer>(client_, resource, options);
  }
  return slot.get();
}

void SharedInformerFactory::Start() {
  std::lock_guard lock(mu_);
  if (shut_down_) return;
  for (auto& [key, informer] : informers_) informer->Start();
}

bool SharedInformerFactory::WaitForCacheSync(std::chrono::milliseconds timeout) {
  std::vector<Informer*> informers;
  {
    std::lock_guard lock(mu_);
    for (auto& [key, informer] : informers_) informers.push_back(informer.get());
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (Informer* informer : informers) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (!informer->WaitForSync(std::max(left, std::chrono::milliseconds(0)))) return false;
  }
  return true;
}

void SharedInformerFactory::Shutdown() {
  std::vector<Informer*> informers;
  {
    std::lock_guard lock(mu_);
    shut_down_ = true;
    for (auto& [key, informer] : informers_) informers.push_back(informer.get());
  }
  // Outside mu_: Stop() joins dispatch threads whose handlers may call For().
  for (Informer* informer : informers) informer->Stop();
}

}  // namespace mk8s::client
