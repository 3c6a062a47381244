#include "apiserver/registry/policy_admission.h"

#include <cctype>
#include <string>

#include "apiserver/registry/core_admission.h"

namespace mk8s::apiserver {
namespace {

using nlohmann::json;

// A count >= 0 or "N%" with 0 <= N <= 100, as upstream's ValidatePositiveIntOrPercent and
// IsNotMoreThan100Percent.
void ValidateIntOrPercent(const json& value, const std::string& field,
                          std::vector<StatusCause>* causes) {
  if (value.is_number_integer()) {
    if (value.get<int64_t>() < 0) {
      causes->push_back({"FieldValueInvalid",
                         "Invalid value: " + value.dump() + ": must be greater than or equal to 0",
                         field});
    }
    return;
  }
  const std::string text = value.is_string() ? value.get<std::string>() : value.dump();
  const bool digits_then_percent =
      value.is_string() && text.size() >= 2 && text.back() == '%' &&
      text.find_first_not_of("0123456789") == text.size() - 1;
  if (!digits_then_percent) {
    causes->push_back({"FieldValueInvalid",
                       "Invalid value: \"" + text + "\": a valid percent string must be a numeric "
                       "string followed by an ending '%' (e.g. '1%' or '93%')",
                       field});
    return;
  }
  if (std::stoll(text.substr(0, std::min<size_t>(text.size() - 1, 6))) > 100 ||
      text.size() > 7) {
    causes->push_back({"FieldValueInvalid",
                       "Invalid value: \"" + text + "\": must not be greater than 100%", field});
  }
}

}  // namespace

void ValidatePodDisruptionBudget(const json& budget, std::vector<StatusCause>* causes) {
  const json spec = budget.value("spec", json::object());
  if (!spec.is_object()) return;
  const bool has_min = spec.contains("minAvailable") && !spec["minAvailable"].is_null();
  const bool has_max = spec.contains("maxUnavailable") && !spec["maxUnavailable"].is_null();
  if (has_min && has_max) {
    causes->push_back({"FieldValueInvalid",
                       "Invalid value: \"spec\": minAvailable and maxUnavailable cannot be both set",
                       "spec"});
  }
  if (has_min) ValidateIntOrPercent(spec["minAvailable"], "spec.minAvailable", causes);
  if (has_max) ValidateIntOrPercent(spec["maxUnavailable"], "spec.maxUnavailable", causes);
  if (spec.contains("unhealthyPodEvictionPolicy") && !spec["unhealthyPodEvictionPolicy"].is_null()) {
    const json& policy = spec["unhealthyPodEvictionPolicy"];
    if (!policy.is_string() ||
        (policy != "IfHealthyBudget" && policy != "AlwaysAllow")) {
      causes->push_back({"FieldValueNotSupported",
                         "Unsupported value: " + policy.dump() +
                             ": supported values: \"AlwaysAllow\", \"IfHealthyBudget\"",
                         "spec.unhealthyPodEvictionPolicy"});
    }
  }
  if (auto selector = spec.find("selector"); selector != spec.end() && selector->is_object()) {
    ValidateLabelSelector(*selector, "spec.selector", causes);
  }
}

json EmptyDisruptionBudgetStatus() {
  return {{"disruptionsAllowed", 0}, {"currentHealthy", 0}, {"desiredHealthy", 0},
          {"expectedPods", 0}};
}

}  // namespace mk8s::apiserver
