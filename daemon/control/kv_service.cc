// mk8s.v1.KV: the datastore as `mk8s dbctl` sees it.
#include <chrono>

#include "control/services.h"
#include "store/store.h"

namespace mk8s::control {
namespace {

void ToProto(const store::KeyValue& kv, v1::KeyValue* out, bool with_value = true) {
  out->set_key(kv.key);
  if (with_value) out->set_value(kv.value);
  out->set_create_revision(kv.create_rev);
  out->set_mod_revision(kv.mod_rev);
}

grpc::Status FromOutcome(const store::WriteOutcome& outcome, int64_t* revision) {
  if (!outcome.status.ok()) return ToGrpc(outcome.status);
  *revision = outcome.result.revision;
  return grpc::Status::OK;
}

constexpr int64_t kMaxListLimit = 100000;

}  // namespace

grpc::Status KvService::Get(grpc::ServerContext*, const v1::GetRequest* request,
                            v1::GetResponse* reply) {
  Result<store::KeyValue> kv = context_->store->Get(request->key(), request->revision());
  if (!kv.ok()) return ToGrpc(kv.status());
  ToProto(*kv, reply->mutable_kv());
  reply->set_revision(request->revision() != 0 ? request->revision()
                                                : context_->store->CurrentRevision());
  return grpc::Status::OK;
}

grpc::Status KvService::List(grpc::ServerContext*, const v1::ListRequest* request,
                             v1::ListResponse* reply) {
  if (request->limit() < 0 || request->limit() > kMaxListLimit) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "limit must be between 0 and " + std::to_string(kMaxListLimit));
  }
  store::ListOptions options;
  options.limit = request->limit();
  options.start_after = request->start_after();
  options.at_revision = request->revision();
  Result<store::ListResult> list = context_->store->List(request->prefix(), options);
  if (!list.ok()) return ToGrpc(list.status());
  for (const store::KeyValue& kv : list->kvs) {
    ToProto(kv, reply->add_kvs(), !request->keys_only());
  }
  reply->set_revision(list->revision);
  reply->set_more(list->more);
  return grpc::Status::OK;
}

grpc::Status KvService::Put(grpc::ServerContext*, const v1::PutRequest* request,
                            v1::PutResponse* reply) {
  store::Store& store = *context_->store;
  int64_t revision = 0;
  grpc::Status status;
  if (request->create_only()) {
    status = FromOutcome(store.Create(request->key(), request->value()), &revision);
  } else if (request->expected_mod_revision() > 0) {
    status = FromOutcome(
        store.Update(request->key(), request->value(), request->expected_mod_revision()),
        &revision);
  } else {
    // Create or overwrite. A concurrent create/delete can make either step lose the race, so
    // retry a few times before reporting the conflict.
    for (int attempt = 0; attempt < 5; ++attempt) {
      store::WriteOutcome outcome = store.Update(request->key(), request->value(), 0);
      if (outcome.status.code() == Code::kNotFound) {
        outcome = store.Create(request->key(), request->value());
        if (outcome.status.code() == Code::kAlreadyExists) continue;
      }
      status = FromOutcome(outcome, &revision);
      break;
    }
  }
  if (status.ok()) reply->set_revision(revision);
  return status;
}

grpc::Status KvService::Delete(grpc::ServerContext*, const v1::DeleteRequest* request,
                               v1::DeleteResponse* reply) {
  int64_t revision = 0;
  grpc::Status status = FromOutcome(
      context_->store->Delete(request->key(), request->expected_mod_revision()), &revision);
  if (status.ok()) reply->set_revision(revision);
  return status;
}

grpc::Status KvService::Watch(grpc::ServerContext* server_context,
                              const v1::WatchRequest* request,
                              grpc::ServerWriter<v1::WatchEvent>* writer) {
  store::Store& store = *context_->store;
  const int64_t after =
      request->after_revision() > 0 ? request->after_revision() : store.CurrentRevision();
  Result<std::unique_ptr<store::Watch>> watch = store.StartWatch(request->prefix(), after);
  if (!watch.ok()) return ToGrpc(watch.status());
  while (!server_context->IsCancelled() && !shutting_down_->load()) {
    auto events = (*watch)->Next(std::chrono::milliseconds(200));
    if (!events.ok()) return ToGrpc(events.status());
    for (const auto& event : *events) {
      v1::WatchEvent out;
      out.set_type(event->type == store::EventType::kPut ? v1::WatchEvent::PUT
                                                        : v1::WatchEvent::DELETE);
      ToProto(event->kv, out.mutable_kv());
      out.set_prev_revision(event->prev_rev);
      if (!writer->Write(out)) return grpc::Status::CANCELLED;  // the client went away
    }
  }
  return grpc::Status::OK;
}

}  // namespace mk8s::control
