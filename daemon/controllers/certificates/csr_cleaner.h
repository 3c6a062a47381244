// CSR cleaner ("csr-cleaner"): deletes CertificateSigningRequests that have served their
// purpose, with upstream's deadlines, so renewals never pile up: an Approved, Denied or Failed
// request one hour after that condition was set (an issued certificate has been picked up by
// then), a request still pending after 24 hours, and any request whose issued certificate has
// expired. Event driven: each request is reconciled when it changes and again at its deadline.
// Deletes carry a UID precondition, so a request re-created under the same name is never lost.
//
// Threads: the Controller's workers; informer handlers only enqueue.
#pragma once

#include <chrono>
#include <nlohmann/json_fwd.hpp>
#include <optional>

#include "controllers/controller.h"

namespace mk8s::controllers {

class CsrCleaner final : public Controller {
 public:
  static constexpr std::chrono::hours kDecidedExpiration{1};  // Approved, Denied, Failed
  static constexpr std::chrono::hours kPendingExpiration{24};

  explicit CsrCleaner(const ControllerContext& context) : Controller("csr-cleaner", context) {}
  void Setup() override;

 protected:
  Status Reconcile(const std::string& name) override;

 private:
  client::Informer* csrs_ = nullptr;
};

// When `csr` (a CertificateSigningRequest) is due for deletion; nullopt when it carries no
// usable time (it is then left alone). Exposed for tests.
std::optional<std::chrono::system_clock::time_point> CsrDeletionDeadline(
    const nlohmann::json& csr);

}  // namespace mk8s::controllers
