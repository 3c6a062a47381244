// Status and Result<T>: how errors travel inside mk8s (no exceptions across component edges).
//
// A Status is a code plus a human message that states the cause and, where it helps, the next step.
// Result<T> holds either a value or a non-OK Status. Both are cheap to move and thread-compatible.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>

namespace mk8s {

enum class Code {
  kOk = 0,
  kInvalidArgument,   // the caller's input is wrong
  kNotFound,          // the key/object does not exist
  kAlreadyExists,     // create of an existing key
  kConflict,          // compare-and-swap failed: the revision did not match
  kCompacted,         // the requested revision is older than the compaction point
  kFutureRevision,    // the requested revision has not been issued yet
  kUnavailable,       // closed, shutting down, or a dependency is down; retry later
  kResourceExhausted, // a queue or limit is full
  kDeadlineExceeded,
  kInternal,          // a bug or an I/O failure
};

const char* CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status Ok() { return Status(); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // "NotFound: key /a does not exist"
  std::string ToString() const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Status status) : status_(std::move(status)) { assert(!status_.ok()); }  // NOLINT

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & { assert(ok()); return *value_; }
  const T& value() const& { assert(ok()); return *value_; }
  T&& value() && { assert(ok()); return std::move(*value_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace mk8s
