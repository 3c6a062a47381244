// The controllers' name for the client library's EventRecorder (client/event_recorder.h).
#pragma once

#include "client/event_recorder.h"

namespace mk8s::controllers {
using EventRecorder = client::EventRecorder;
}  // namespace mk8s::controllers
