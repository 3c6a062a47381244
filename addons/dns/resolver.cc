#include "resolver.h"

#include <algorithm>

namespace mk8s::dns {
namespace {

constexpr uint16_t kTypeIXFR = 251, kTypeAXFR = 252;
constexpr uint8_t kBadVersExtended = 1;  // BADVERS (16) >> 4

bool Encodable(const Rr& rr) {
  if (!SplitName(rr.owner)) return false;
  if (const auto* name = std::get_if<std::string>(&rr.data)) return SplitName(*name).has_value();
  if (const auto* srv = std::get_if<SrvData>(&rr.data)) return SplitName(srv->target).has_value();
  if (const auto* soa = std::get_if<SoaData>(&rr.data)) {
    return SplitName(soa->mname) && SplitName(soa->rname);
  }
  return true;
}

Header ReplyHeader(const Header& query, bool authoritative, Rcode rcode) {
  Header h;
  h.id = query.id;
  h.flags = kFlagQR | (query.flags & kFlagRD) | kFlagRA | (authoritative ? kFlagAA : 0);
  h.flags |= static_cast<uint16_t>(query.opcode() << 11);
  h.set_rcode(rcode);
  return h;
}

std::vector<uint8_t> Build(const Message& query, const LookupResult& result, bool with_additional,
                           bool truncated) {
  Header h = ReplyHeader(query.header, result.ours, result.rcode);
  h.set(kFlagTC, truncated);
  Writer w;
  w.WriteHeader(h);
  w.WriteQuestion(query.questions[0]);
  uint16_t counts[3] = {0, 0, 0};
  if (!truncated) {
    const std::vector<Rr>* sections[3] = {&result.answer, &result.authority, &result.additional};
    for (int s = 0; s < 3; ++s) {
      if (s == 2 && !with_additional) break;
      for (const Rr& rr : *sections[s]) {
        if (!Encodable(rr)) continue;
        w.WriteRr(rr);
        ++counts[s];
      }
    }
  }
  if (query.edns) {
    w.WriteOpt(kOurUdpSize);
    ++counts[2];
  }
  w.SetCounts(1, counts[0], counts[1], counts[2]);
  return w.Take();
}

}  // namespace

size_t ReplyLimit(const Message& query, Resolver::Transport transport) {
  if (transport == Resolver::Transport::kTcp) return 65535;
  if (!query.edns) return kClassicUdpSize;
  return std::clamp<size_t>(query.edns->udp_size, kClassicUdpSize, kOurUdpSize);
}

std::vector<uint8_t> EncodeAnswer(const Message& query, const LookupResult& result, size_t limit) {
  std::vector<uint8_t> reply = Build(query, result, true, false);
  if (reply.size() <= limit) return reply;
  reply = Build(query, result, false, false);  // additional data is optional
  if (reply.size() <= limit) return reply;
  return Build(query, result, false, true);
}

std::vector<uint8_t> EncodeError(const Header& header, const Question* question, Rcode rcode,
                                 const std::optional<Edns>& edns) {
  Writer w;
  w.WriteHeader(ReplyHeader(header, false, rcode));
  if (question != nullptr) w.WriteQuestion(*question);
  if (edns) w.WriteOpt(kOurUdpSize);
  w.SetCounts(question != nullptr ? 1 : 0, 0, 0, edns ? 1 : 0);
  return w.Take();
}

std::vector<uint8_t> FitReply(std::vector<uint8_t> reply, const Message& query, size_t limit) {
  if (reply.size() <= limit) return reply;
  std::optional<Header> header;
  Parse(reply, nullptr, &header);
  Header h = header.value_or(ReplyHeader(query.header, false, kServFail));
  h.set(kFlagTC, true);
  Writer w;
  w.WriteHeader(h);
  w.WriteQuestion(query.questions[0]);
  if (query.edns) w.WriteOpt(kOurUdpSize);
  w.SetCounts(1, 0, 0, query.edns ? 1 : 0);
  return w.Take();
}

Resolver::Resolver(const ClusterRecords& records, std::unique_ptr<Forwarder> forwarder)
    : records_(records), forwarder_(std::move(forwarder)) {}

Resolver::Outcome Resolver::Answer(std::span<const uint8_t> query, Transport transport) {
  Outcome outcome;
  Answer(query, transport, &outcome);
  return outcome;
}

void Resolver::Answer(std::span<const uint8_t> query, Transport transport, Outcome* out) {
  ++stats_.queries;
  Outcome& outcome = *out;
  outcome.kind = Outcome::kDrop;
  // Read before the lookup: a change racing it leaves an entry that is never served.
  const uint32_t serial = records_.serial();
  if (transport == Transport::kUdp && query.size() > 2 && (query[2] & 0x80) == 0 &&
      answers_.GetInto(query, serial, &outcome.reply)) {
    ++stats_.local;
    ++stats_.local_cached;
    outcome.kind = Outcome::kReply;
    return;
  }
  std::optional<Header> header;
  const std::optional<Message> message = Parse(query, nullptr, &header);
  if (!header || header->qr()) {
    ++stats_.dropped;
    return;
  }
  outcome.kind = Outcome::kReply;
  if (!message) {
    ++stats_.formerr;
    outcome.reply = EncodeError(*header, nullptr, kFormErr, std::nullopt);
    return;
  }
  const Question* question = message->questions.size() == 1 ? &message->questions[0] : nullptr;
  if (header->opcode() != 0) {
    outcome.reply = EncodeError(*header, question, kNotImp, message->edns);
    return;
  }
  if (question == nullptr) {
    ++stats_.formerr;
    outcome.reply = EncodeError(*header, nullptr, kFormErr, message->edns);
    return;
  }
  if (message->edns && message->edns->version > 0) {
    Writer w;
    w.WriteHeader(ReplyHeader(*header, false, kNoError));
    w.WriteQuestion(*question);
    w.WriteOpt(kOurUdpSize, kBadVersExtended);
    w.SetCounts(1, 0, 0, 1);
    outcome.reply = w.Take();
    return;
  }
  const size_t limit = ReplyLimit(*message, transport);
  if (question->klass == kClassIN || question->klass == kTypeANY) {
    const LookupResult result = records_.Lookup(LookupKey(question->name), question->type);
    if (result.ours) {
      ++stats_.local;
      if (question->type == kTypeAXFR || question->type == kTypeIXFR) {
        outcome.reply = EncodeError(*header, question, kRefused, message->edns);
      } else {
        outcome.reply = EncodeAnswer(*message, result, limit);
        if (transport == Transport::kUdp) answers_.Put(query, serial, outcome.reply);
      }
      return;
    }
  }
  const bool dnssec_ok = message->edns && message->edns->dnssec_ok;
  if (auto cached = cache_.Get(ResponseCache::KeyFor(*question, dnssec_ok), header->id, *question,
                               Clock::now())) {
    ++stats_.cache_hits;
    outcome.reply = FitReply(std::move(*cached), *message, limit);
    return;
  }
  outcome.kind = Outcome::kForward;
}

std::vector<uint8_t> Resolver::Forward(std::span<const uint8_t> query, Transport transport) {
  const std::optional<Message> message = Parse(query);
  if (!message || message->questions.size() != 1) return {};
  const Question& question = message->questions[0];
  ++stats_.forwarded;
  std::optional<std::vector<uint8_t>> answer =
      forwarder_->Forward(query, question, transport == Transport::kTcp);
  if (!answer) {
    ++stats_.servfail;
    return EncodeError(message->header, &question, kServFail, message->edns);
  }
  const bool dnssec_ok = message->edns && message->edns->dnssec_ok;
  cache_.Put(ResponseCache::KeyFor(question, dnssec_ok), *answer, Clock::now());
  return FitReply(std::move(*answer), *message, ReplyLimit(*message, transport));
}

}  // namespace mk8s::dns
