// The scheduler's name for the shared quantity parser (common/quantity.h).
#pragma once

#include "common/quantity.h"

namespace mk8s::scheduler {
using mk8s::JsonQuantityMilli;
using mk8s::JsonQuantityValue;
using mk8s::ParseQuantityMilli;
using mk8s::ParseQuantityValue;
}  // namespace mk8s::scheduler
