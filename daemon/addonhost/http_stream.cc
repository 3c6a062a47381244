#include "addonhost/http_stream.h"

#include <spdlog/spdlog.h>

#include <utility>
#include <vector>

#include "addonhost/addon_thread.h"

namespace mk8s::addonhost {

AddonHttpStream::AddonHttpStream(std::shared_ptr<AddonThread> handler_thread, std::string body)
    : handler_thread_(std::move(handler_thread)), pending_(std::move(body)) {}

mk8s_status_t AddonHttpStream::Write(std::string_view bytes, int64_t timeout_ms) {
  if (bytes.size() > kMaxWrite || (bytes.data() == nullptr && !bytes.empty())) {
    return MK8S_ERR_INVALID_ARGUMENT;
  }
  using Clock = std::chrono::steady_clock;
  const bool wait_forever = timeout_ms < 0;
  const Clock::time_point deadline =
      Clock::now() + std::chrono::milliseconds(wait_forever ? 0 : timeout_ms);
  std::unique_lock lock(mu_);
  for (;;) {
    if (state_ == State::kClosed || client_gone_.load()) return MK8S_ERR_CLOSED;
    if (bytes.empty()) return MK8S_OK;
    const size_t queued = state_ == State::kPending ? pending_.size() : out_->buffered_bytes();
    if (queued + bytes.size() <= kMaxBuffered) break;
    // The handler itself, before it returned: nothing drains until it does.
    if (state_ == State::kPending && handler_thread_ != nullptr && handler_thread_->OnThread()) {
      return MK8S_ERR_TIMEOUT;
    }
    const Clock::time_point now = Clock::now();
    if (!wait_forever && now >= deadline) return MK8S_ERR_TIMEOUT;
    Clock::time_point wake = now + kDrainPoll;
    if (!wait_forever && deadline < wake) wake = deadline;
    cv_.wait_until(lock, wake);
  }
  if (state_ == State::kPending) {
    pending_.append(bytes);
    return MK8S_OK;
  }
  if (!out_->Write(std::string(bytes))) {
    client_gone_.store(true);
    return MK8S_ERR_CLOSED;
  }
  return MK8S_OK;
}

void AddonHttpStream::AppendFromHandler(std::string_view bytes) {
  if (bytes.empty()) return;
  std::lock_guard lock(mu_);
  if (state_ == State::kPending) {
    pending_.append(bytes);
  } else if (state_ == State::kOpen) {
    out_->Write(std::string(bytes));
  }
}

void AddonHttpStream::End() {
  {
    std::lock_guard lock(mu_);
    if (state_ == State::kPending) {
      end_requested_ = true;  // Start sends the pending bytes, then ends
      return;
    }
    if (state_ == State::kOpen) out_->Close();
    state_ = State::kClosed;
  }
  cv_.notify_all();
}

bool AddonHttpStream::Start(apiserver::http::Responder& responder, int status,
                            std::string content_type) {
  std::shared_ptr<apiserver::http::ResponseStream> out;
  {
    std::lock_guard lock(mu_);
    if (state_ != State::kPending) {
      state_ = State::kClosed;
    } else {
      out = responder.StartStream(status, std::move(content_type));
      if (out == nullptr) {
        state_ = State::kClosed;
      } else {
        out_ = out;
        state_ = State::kOpen;
        if (!pending_.empty() && !out_->Write(std::move(pending_))) client_gone_.store(true);
        pending_ = std::string();
        if (end_requested_) {
          out_->Close();
          state_ = State::kClosed;
        }
      }
    }
  }
  cv_.notify_all();
  // Outside mu_: an already ended stream runs the callback right here.
  if (out == nullptr) return false;
  out->OnClosed([weak = weak_from_this()] {
    if (auto self = weak.lock()) self->OnClientGone();
  });
  return true;
}

void AddonHttpStream::Cancel() {
  {
    std::lock_guard lock(mu_);
    if (state_ == State::kOpen) out_->Close();
    state_ = State::kClosed;
    pending_ = std::string();
  }
  cv_.notify_all();
}

bool AddonHttpStream::closed() const {
  std::lock_guard lock(mu_);
  return state_ == State::kClosed || client_gone_.load();
}

void AddonHttpStream::OnClientGone() {
  client_gone_.store(true);
  cv_.notify_all();  // without mu_ (see the header); a missed wake-up costs one kDrainPoll
}

AddonStreams::AddonStreams(std::shared_ptr<AddonThread> thread, std::string label)
    : thread_(std::move(thread)), label_(std::move(label)) {}

AddonStreams::~AddonStreams() {
  Close();
  if (!handles_.empty()) {
    spdlog::warn(
        "addon {}: leaked {} HTTP stream handle(s) (never ended with "
        "mk8s_host_http_stream_end); freed after unload",
        label_, handles_.size());
  }
  for (mk8s_http_stream* handle : handles_) delete handle;
}

mk8s_status_t AddonStreams::Begin(mk8s_http_response_v1* response, mk8s_http_stream** stream_out,
                                  std::string* why) {
  if (stream_out == nullptr || response == nullptr ||
      response->struct_size < MK8S_HTTP_RESPONSE_V1_MIN_SIZE || response->body == nullptr ||
      thread_ == nullptr || !thread_->OnThread()) {
    *why =
        "stream_begin needs stream_out and the response of a route handler, called by that "
        "handler during its call";
    return MK8S_ERR_INVALID_ARGUMENT;
  }
  auto* call = reinterpret_cast<HttpCall*>(response->body);
  if (call->stream != nullptr) {
    *why = "this response is a stream already";
    return MK8S_ERR_INVALID_ARGUMENT;
  }
  auto stream = std::make_shared<AddonHttpStream>(thread_, call->body);
  auto handle = std::make_unique<mk8s_http_stream>(mk8s_http_stream{stream});
  {
    std::lock_guard lock(mu_);
    if (closed_) {
      *why = "the host is stopping this addon";
      return MK8S_ERR_UNAVAILABLE;
    }
    handles_.insert(handle.get());
  }
  call->body.clear();  // it starts the stream now
  call->stream = std::move(stream);
  *stream_out = handle.release();
  return MK8S_OK;
}

void AddonStreams::End(mk8s_http_stream* handle) {
  if (handle == nullptr) return;
  {
    std::lock_guard lock(mu_);
    handles_.erase(handle);
  }
  if (handle->stream != nullptr) handle->stream->End();
  delete handle;
}

void AddonStreams::EndAll() {
  std::vector<std::shared_ptr<AddonHttpStream>> open;
  {
    std::lock_guard lock(mu_);
    for (mk8s_http_stream* handle : handles_) {
      if (handle->stream != nullptr && !handle->stream->closed()) open.push_back(handle->stream);
    }
  }
  if (!open.empty()) {
    spdlog::info("addon {}: ending {} open HTTP stream(s): it is stopping", label_, open.size());
  }
  for (const auto& stream : open) stream->Cancel();
}

void AddonStreams::Close() {
  {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  EndAll();
}

void WriteBody(mk8s_http_writer* writer, std::string_view bytes) {
  if (writer == nullptr || bytes.empty()) return;
  auto* call = reinterpret_cast<HttpCall*>(writer);
  if (call->stream != nullptr) {
    call->stream->AppendFromHandler(bytes);
  } else {
    call->body.append(bytes);
  }
}

}  // namespace mk8s::addonhost
