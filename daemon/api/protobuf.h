// Decoding of Kubernetes protobuf request bodies (Content-Type application/vnd.kubernetes.protobuf)
// into JSON, driven by the API schema.
//
// A body is the magic "k8s\0" followed by a runtime.Unknown envelope {1: TypeMeta{apiVersion,
// kind}, 2: raw object bytes, 3: contentEncoding, 4: contentType}. The result is the object as
// a JSON object with apiVersion and kind set, shaped like the object's JSON encoding. Empty
// strings are dropped (Go writes every non-pointer string); ints and bools are kept.
//
// Hostile input never crashes or throws: every problem comes back as kInvalidArgument naming the
// byte offset and the field path. Work and output are linear in the input size; nesting deeper
// than kMaxProtobufDepth is refused. Thread-safe (no shared mutable state).
#pragma once

#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "api/schema.h"
#include "common/status.h"

namespace mk8s::api {

inline constexpr int kMaxProtobufDepth = 64;

// True if the body starts with the Kubernetes protobuf magic bytes 6b 38 73 00.
bool HasProtobufMagic(std::string_view body);

// Decodes a whole request body (magic + envelope). Unknown kinds are an error.
Result<nlohmann::json> DecodeProtobufBody(std::string_view body,
                                          const Schema& schema = Schema::Builtin());

// Decodes the bare bytes of one message of the given type into a JSON object.
Result<nlohmann::json> DecodeProtobufMessage(const MessageType& type, std::string_view bytes);

}  // namespace mk8s::api
