// Admission for policy/v1 PodDisruptionBudgets: upstream's validation (minAvailable and
// maxUnavailable exclusive; each a count >= 0 or a percentage 0-100%; the unhealthy-pod eviction
// policy's two values) and the empty status a new budget starts with (the disruption controller
// fills it in). Pure functions; thread-safe.
#pragma once

#include <nlohmann/json.hpp>
#include <vector>

#include "apiserver/api_error.h"

namespace mk8s::apiserver {

void ValidatePodDisruptionBudget(const nlohmann::json& budget, std::vector<StatusCause>* causes);

// The status of a budget nothing has been computed for yet: no disruption allowed.
nlohmann::json EmptyDisruptionBudgetStatus();

}  // namespace mk8s::apiserver
