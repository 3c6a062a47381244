// Which terminated pods the pod GC deletes first when there are more than the threshold: evicted
// pods (phase Failed, status.reason "Evicted") before the others, then the oldest by
// metadata.creationTimestamp, then by namespace/name so the order is total. Pure; thread-safe.
#pragma once

#include <vector>

#include "client/client.h"

namespace mk8s::controllers::podgc {

// True if `a` should be deleted before `b`.
bool DeleteBefore(const nlohmann::json& a, const nlohmann::json& b);
// Sorts `pods` (non-null) in deletion order.
void SortForDeletion(std::vector<client::ObjectPtr>* pods);

}  // namespace mk8s::controllers::podgc
