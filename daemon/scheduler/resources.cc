#include "scheduler/resources.h"

#include <algorithm>

#include "scheduler/quantity.h"

namespace mk8s::scheduler {
namespace {

void AddScalar(Resource* r, const std::string& name, int64_t v) {
  r->SetScalar(name, r->Scalar(name) + v);
}

// The container's effective requests: requests, falling back to limits per resource.
Resource ContainerRequests(const nlohmann::json& c) {
  Resource r;
  if (!c.is_object()) return r;
  auto res = c.find("resources");
  if (res == c.end() || !res->is_object()) return r;
  auto req = res->find("requests");
  auto lim = res->find("limits");
  bool has_req = req != res->end() && req->is_object();
  if (has_req) r = Resource::FromList(*req);
  if (lim != res->end() && lim->is_object()) {
    for (auto it = lim->begin(); it != lim->end(); ++it) {
      if (has_req && req->contains(it.key())) continue;
      nlohmann::json one = nlohmann::json::object();
      one[it.key()] = it.value();
      r.Add(Resource::FromList(one));
    }
  }
  return r;
}

}  // namespace

Resource Resource::FromList(const nlohmann::json& list) {
  Resource r;
  if (!list.is_object()) return r;
  for (auto it = list.begin(); it != list.end(); ++it) {
    const std::string& k = it.key();
    if (k == "cpu") {
      r.milli_cpu = JsonQuantityMilli(it.value());
    } else if (k == "memory") {
      r.memory = JsonQuantityValue(it.value());
    } else if (k == "ephemeral-storage") {
      r.ephemeral_storage = JsonQuantityValue(it.value());
    } else if (k == "pods") {
      r.pods = JsonQuantityValue(it.value());
    } else {
      AddScalar(&r, k, JsonQuantityValue(it.value()));
    }
  }
  return r;
}

int64_t Resource::Scalar(std::string_view name) const {
  for (const auto& [k, v] : scalar) {
    if (k == name) return v;
  }
  return 0;
}

void Resource::SetScalar(const std::string& name, int64_t v) {
  auto it = std::lower_bound(scalar.begin(), scalar.end(), name,
                             [](const auto& kv, const std::string& n) { return kv.first < n; });
  if (it != scalar.end() && it->first == name) {
    it->second = v;
  } else {
    scalar.emplace(it, name, v);
  }
}

void Resource::Add(const Resource& o) {
  milli_cpu += o.milli_cpu;
  memory += o.memory;
  ephemeral_storage += o.ephemeral_storage;
  pods += o.pods;
  for (const auto& [k, v] : o.scalar) AddScalar(this, k, v);
}

void Resource::Sub(const Resource& o) {
  milli_cpu -= o.milli_cpu;
  memory -= o.memory;
  ephemeral_storage -= o.ephemeral_storage;
  pods -= o.pods;
  for (const auto& [k, v] : o.scalar) AddScalar(this, k, -v);
}

void Resource::Max(const Resource& o) {
  milli_cpu = std::max(milli_cpu, o.milli_cpu);
  memory = std::max(memory, o.memory);
  ephemeral_storage = std::max(ephemeral_storage, o.ephemeral_storage);
  for (const auto& [k, v] : o.scalar) SetScalar(k, std::max(Scalar(k), v));
}

bool Resource::IsZero() const {
  if (milli_cpu != 0 || memory != 0 || ephemeral_storage != 0) return false;
  for (const auto& kv : scalar) {
    if (kv.second != 0) return false;
  }
  return true;
}

PodRequests ComputePodRequests(const nlohmann::json& spec) {
  PodRequests out;
  if (!spec.is_object()) return out;
  Resource sum;
  int64_t nz_cpu = 0;
  int64_t nz_mem = 0;
  auto containers = spec.find("containers");
  if (containers != spec.end() && containers->is_array()) {
    for (const auto& c : *containers) {
      Resource r = ContainerRequests(c);
      nz_cpu += r.milli_cpu == 0 ? kDefaultMilliCpuRequest : r.milli_cpu;
      nz_mem += r.memory == 0 ? kDefaultMemoryRequest : r.memory;
      sum.Add(r);
    }
  }
  auto inits = spec.find("initContainers");
  if (inits != spec.end() && inits->is_array()) {
    Resource sidecars;  // restartable init containers started so far keep running
    Resource init_max;
    for (const auto& c : *inits) {
      Resource r = ContainerRequests(c);
      bool restartable = c.is_object() && c.value("restartPolicy", "") == "Always";
      if (restartable) {
        sum.Add(r);
        nz_cpu += r.milli_cpu;
        nz_mem += r.memory;
        sidecars.Add(r);
        init_max.Max(sidecars);
      } else {
        Resource eff = r;
        eff.Add(sidecars);
        init_max.Max(eff);
      }
    }
    sum.Max(init_max);
    nz_cpu = std::max(nz_cpu, init_max.milli_cpu);
    nz_mem = std::max(nz_mem, init_max.memory);
  }
  auto overhead = spec.find("overhead");
  if (overhead != spec.end() && overhead->is_object()) {
    Resource oh = Resource::FromList(*overhead);
    oh.pods = 0;
    sum.Add(oh);
    nz_cpu += oh.milli_cpu;
    nz_mem += oh.memory;
  }
  sum.pods = 0;
  out.requests = std::move(sum);
  out.non_zero_milli_cpu = nz_cpu;
  out.non_zero_memory = nz_mem;
  return out;
}

}  // namespace mk8s::scheduler
