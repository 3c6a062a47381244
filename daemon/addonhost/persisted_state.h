// What the addon host keeps in the state folder across restarts:
//   <state>/addon-state/addons.json   enabled addons and their arguments, crash counters,
//                                     and the note left on an addon the crash-loop guard disabled
//   <state>/addon-state/starting      the name of the addon being started at daemon start (the
//                                     crash-loop guard's marker; absent when no start is underway)
// Writes are atomic (temp file, fsync, rename, fsync of the folder), so a crash never leaves a
// half-written file. Not thread-safe: AddonHost serializes access.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "common/status.h"

namespace mk8s::addonhost {

struct PersistedState {
  std::map<std::string, std::string> enabled;      // name -> raw arguments ("" for none)
  std::map<std::string, int> crashes;              // consecutive daemon deaths during its start
  std::map<std::string, std::string> quarantined;  // name -> why the guard left it disabled
};

// A missing file is an empty state; an unreadable one is an error (never silently dropped).
Result<PersistedState> LoadPersistedState(const std::string& path);
Status SavePersistedState(const std::string& path, const PersistedState& state);

std::optional<std::string> ReadStartMarker(const std::string& path);
// Durable before it returns: the point is to survive the crash that may follow.
Status WriteStartMarker(const std::string& path, const std::string& addon);
void ClearStartMarker(const std::string& path);

}  // namespace mk8s::addonhost
