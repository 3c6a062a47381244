// WebSocket (v5/v4.channel.k8s.io) client <-> SPDY v4 exec/attach session. See bridges.h.
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <thread>

#include "kubelet/streaming/bridges.h"
#include "kubelet/streaming/websocket.h"

namespace mk8s::kubelet {
namespace {

namespace http = apiserver::http;

constexpr size_t kMaxStatusBytes = 64 * 1024;

// The v4 error stream carries a metav1.Status JSON (the same v5 puts on channel 3). Older
// servers send plain text: wrap it so kubectl still reports the failure.
std::string StatusForClient(const std::string& error_stream) {
  const size_t first = error_stream.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return "";
  if (error_stream[first] == '{') return error_stream;
  nlohmann::json status = {{"metadata", nlohmann::json::object()},
                           {"status", "Failure"},
                           {"message", error_stream},
                           {"reason", "InternalError"},
                           {"code", 500}};
  return status.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

struct ExecState {
  std::unique_ptr<SpdyClient> upstream;
  std::shared_ptr<http::UpgradedConnection> client;
  ws::FrameParser parser;  // transport thread only (on_data runs serially)
  uint32_t error_id = 0, stdin_id = 0, stdout_id = 0, stderr_id = 0, resize_id = 0;
  bool v5 = true;
  std::atomic<bool> stdin_closed{false};
  std::atomic<bool> client_gone{false};

  void CloseClient(uint16_t code) {
    client->Write(ws::EncodeClose(code));
    client->Close();
  }

  // Transport thread: one chunk of the client's bytes.
  void OnClientBytes(std::string_view bytes) {
    parser.Feed(bytes);
    while (true) {
      Result<std::optional<ws::Message>> message = parser.Next();
      if (!message.ok()) {
        CloseClient(1002);
        upstream->Shutdown();
        return;
      }
      if (!message->has_value()) return;
      ws::Message& m = **message;
      switch (m.opcode) {
        case ws::Opcode::kClose:
          CloseClient(1000);
          upstream->Shutdown();
          return;
        case ws::Opcode::kPing:
          client->Write(ws::EncodeFrame(ws::Opcode::kPong, m.payload));
          break;
        case ws::Opcode::kPong:
          break;
        default:
          OnChannelMessage(m.payload);
      }
    }
  }

  void OnChannelMessage(std::string_view payload) {
    if (payload.empty()) return;
    const uint8_t channel = static_cast<uint8_t>(payload[0]);
    payload.remove_prefix(1);
    if (channel == 0 && stdin_id != 0 && !stdin_closed && !payload.empty()) {
      upstream->SendData(stdin_id, payload);
    } else if (channel == 4 && resize_id != 0) {
      upstream->SendData(resize_id, payload);
    } else if (channel == 255 && v5 && !payload.empty() && payload[0] == 0 && stdin_id != 0 &&
               !stdin_closed.exchange(true)) {
      upstream->SendData(stdin_id, "", /*fin=*/true);  // v5 "close stdin"
    }
  }

  void ToClient(char channel, std::string_view data) {
    if (data.empty() || client_gone) return;
    // Pace on the client: the runtime has no flow control, so wait while it lags.
    while (client->buffered_bytes() > kClientBacklogBytes && !client_gone) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    std::string message(1, channel);
    message.append(data);
    client->Write(ws::EncodeFrame(ws::Opcode::kBinary, message));
  }
};

}  // namespace

Status RunWebSocketExec(
    std::unique_ptr<SpdyClient> upstream, const ExecStreams& streams, bool v5,
    const std::function<std::shared_ptr<http::UpgradedConnection>()>& upgrade_client) {
  auto state = std::make_shared<ExecState>();
  state->upstream = std::move(upstream);
  state->v5 = v5;
  auto open = [&](const char* type, uint32_t* id) -> Status {
    Result<uint32_t> opened = state->upstream->OpenStream({{"streamtype", type}});
    if (!opened.ok()) return opened.status();
    *id = *opened;
    return Status::Ok();
  };
  // containerd starts the command once every expected stream exists.
  if (Status s = open("error", &state->error_id); !s.ok()) return s;
  if (streams.in) {
    if (Status s = open("stdin", &state->stdin_id); !s.ok()) return s;
  }
  if (streams.out) {
    if (Status s = open("stdout", &state->stdout_id); !s.ok()) return s;
  }
  if (streams.err && !streams.tty) {
    if (Status s = open("stderr", &state->stderr_id); !s.ok()) return s;
  }
  if (streams.tty) {
    if (Status s = open("resize", &state->resize_id); !s.ok()) return s;
  }
  state->client = upgrade_client();
  if (state->client == nullptr) {
    state->upstream->Shutdown();
    return Status(Code::kInternal, "the transport cannot upgrade this connection");
  }
  // The callbacks hold `state`; on_closed drops the link by shutting the upstream down.
  state->client->Start([state](std::string_view bytes) { state->OnClientBytes(bytes); },
                       [state] {
                         state->client_gone = true;
                         state->upstream->Shutdown();
                       });

  std::string error_stream;
  (void)state->upstream->Run([&](const spdy::Frame& frame) {
    if (frame.type != spdy::FrameType::kData) return;  // SYN_REPLY, RST, GOAWAY...
    if (frame.stream_id == state->stdout_id) {
      state->ToClient(1, frame.data);
    } else if (frame.stream_id == state->stderr_id) {
      state->ToClient(2, frame.data);
    } else if (frame.stream_id == state->error_id && error_stream.size() < kMaxStatusBytes) {
      error_stream += frame.data;
    }
  });
  state->upstream->Shutdown();
  if (!state->client_gone) {
    const std::string status = StatusForClient(error_stream);
    if (!status.empty()) state->ToClient(3, status);
    state->CloseClient(1000);
  }
  return Status::Ok();
}

}  // namespace mk8s::kubelet
