#include "addonhost/loaded_addon.h"

#define BOOST_DLL_USE_STD_FS
#include <spdlog/spdlog.h>
#include <boost/dll/shared_library.hpp>

#include <filesystem>

#include "addonhost/addon_thread.h"

namespace mk8s::addonhost {
namespace {

std::string Str(const char* s) { return s == nullptr ? "" : s; }

Status Refuse(const std::string& why) { return Status(Code::kInvalidArgument, why); }

std::string VersionText(uint32_t version) {
  return std::to_string(MK8S_ABI_MAJOR_OF(version)) + "." + std::to_string(version & 0xffff);
}

// Copies and checks the addon's manifest. Reads each struct only within its struct_size.
Status CopyManifest(const mk8s_manifest_v1* in, AddonManifest* out) {
  if (in == nullptr) return Refuse("mk8s_addon_init returned no manifest");
  if (MK8S_ABI_MAJOR_OF(in->abi_version) != MK8S_ABI_VERSION_MAJOR) {
    return Refuse("its manifest has ABI version " + VersionText(in->abi_version));
  }
  if (in->struct_size < MK8S_MANIFEST_V1_MIN_SIZE) {
    return Refuse("its manifest struct is too short (struct_size " +
                  std::to_string(in->struct_size) + ", ABI 1 needs at least " +
                  std::to_string(MK8S_MANIFEST_V1_MIN_SIZE) + ")");
  }
  out->name = Str(in->name);
  if (!IsValidName(out->name)) {
    return Refuse("its name '" + out->name + "' is not lower-case letters, digits and '-'");
  }
  out->version = Str(in->version);
  out->description = Str(in->description);
  out->repository = in->repository == nullptr || *in->repository == '\0' ? "core" : in->repository;
  out->needs_root = in->needs_root != 0;
  for (size_t i = 0; i < in->arg_count; ++i) {
    const mk8s_arg_spec_v1* spec = in->args == nullptr ? nullptr : in->args[i];
    if (spec == nullptr || MK8S_ABI_MAJOR_OF(spec->abi_version) != MK8S_ABI_VERSION_MAJOR ||
        spec->struct_size < MK8S_ARG_SPEC_V1_MIN_SIZE) {
      return Refuse("argument " + std::to_string(i) +
                    " of its manifest is missing, of another ABI "
                    "version or too short");
    }
    ArgSpec arg;
    arg.name = Str(spec->name);
    arg.help = Str(spec->help);
    if (!IsValidName(arg.name)) return Refuse("its argument name '" + arg.name + "' is invalid");
    if (spec->type < MK8S_ARG_STRING || spec->type > MK8S_ARG_IPV4_LIST) {
      return Refuse("argument '" + arg.name + "' has unknown type " + std::to_string(spec->type));
    }
    arg.type = static_cast<ArgType>(spec->type);
    arg.required = spec->required != 0;
    if (spec->default_value != nullptr) arg.default_value = spec->default_value;
    arg.choices = Str(spec->choices);
    arg.pattern = Str(spec->pattern);
    arg.min_value = spec->min_value;
    arg.max_value = spec->max_value;
    out->args.push_back(std::move(arg));
  }
  for (size_t i = 0; i < in->depends_on_count; ++i) {
    const std::string dep = in->depends_on == nullptr ? "" : Str(in->depends_on[i]);
    if (!IsValidName(dep)) return Refuse("it depends on an invalid addon name '" + dep + "'");
    out->depends_on.push_back(dep);
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<LoadedAddon>> LoadedAddon::Load(const std::string& path,
                                                       const LoadOptions& options) {
  std::unique_ptr<LoadedAddon> addon(new LoadedAddon());
  addon->path_ = path;
  addon->call_timeout_ = options.call_timeout;
  auto library = std::make_unique<boost::dll::shared_library>();
  try {
    // RTLD_NOW: an unresolved symbol fails here, with the loader's message, not mid-call.
    library->load(path, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
  } catch (const std::exception& e) {
    return Refuse(std::string("cannot load it: ") + e.what());
  }
  // The version check comes before any call into the library.
  if (!library->has(MK8S_ADDON_ABI_VERSION_SYMBOL)) {
    return Refuse("it does not export the symbol " MK8S_ADDON_ABI_VERSION_SYMBOL
                  " (not an mk8s addon, or not built with the SDK's MK8S_ADDON macro)");
  }
  const uint32_t version = library->get<const uint32_t>(MK8S_ADDON_ABI_VERSION_SYMBOL);
  if (MK8S_ABI_MAJOR_OF(version) != MK8S_ABI_VERSION_MAJOR) {
    return Refuse("it was built for ABI version " + VersionText(version) + ", this mk8sd speaks " +
                  VersionText(MK8S_ABI_VERSION) + ": rebuild it against this mk8s SDK");
  }
  if (!library->has(MK8S_ADDON_INIT_SYMBOL)) {
    return Refuse("it does not export the symbol " MK8S_ADDON_INIT_SYMBOL);
  }
  auto& init = library->get<const mk8s_addon_v1*(const mk8s_host_api_v1*)>(MK8S_ADDON_INIT_SYMBOL);

  const std::string label = std::filesystem::path(path).stem().string();
  addon->thread_ = std::make_shared<AddonThread>(label);
  addon->host_ =
      std::make_unique<HostContext>(options.settings, options.make_client, addon->thread_, label);
  addon->host_->SetFaultHandler(
      [raw = addon.get()](const std::string& why) { raw->SetFault(why); });
  addon->host_->SetHttpRoutes(options.http_routes);
  addon->library_ = std::move(library);

  // Captures by value only: a task abandoned by a timeout must not touch this stack frame.
  auto returned = std::make_shared<const mk8s_addon_v1*>(nullptr);
  const mk8s_host_api_v1* api = addon->host_->api();
  mk8s_addon_init_fn init_fn = &init;
  Status called = addon->Invoke(
      MK8S_ADDON_INIT_SYMBOL,
      [init_fn, api, returned](mk8s_message_out*) {
        *returned = init_fn(api);
        return MK8S_OK;
      },
      options.call_timeout);
  const mk8s_addon_v1* vtable = *returned;
  if (!called.ok()) return Refuse(called.message());  // faulted: the destructor leaks it
  if (vtable == nullptr) {
    return Refuse("its mk8s_addon_init failed (returned NULL; its log lines above say why)");
  }
  // From here on a refusal must undo init: on_unload runs in the destructor.
  Status checked = Status::Ok();
  if (MK8S_ABI_MAJOR_OF(vtable->abi_version) != MK8S_ABI_VERSION_MAJOR) {
    checked = Refuse("its addon struct has ABI version " + VersionText(vtable->abi_version));
  } else if (vtable->struct_size < MK8S_ADDON_V1_MIN_SIZE) {
    checked = Refuse("its addon struct is too short (struct_size " +
                     std::to_string(vtable->struct_size) + ", ABI 1 needs at least " +
                     std::to_string(MK8S_ADDON_V1_MIN_SIZE) + "): rebuild it against this SDK");
  } else {
    addon->addon_ = vtable;  // only now are the callbacks (inside struct_size) readable
    if (vtable->mk8s_on_enable == nullptr || vtable->mk8s_on_disable == nullptr ||
        vtable->mk8s_on_status == nullptr) {
      checked = Refuse(
          "it lacks a required callback (mk8s_on_enable, mk8s_on_disable or "
          "mk8s_on_status)");
    } else {
      checked = CopyManifest(vtable->manifest, &addon->manifest_);
    }
  }
  if (!checked.ok()) return checked;

  addon->state_dir_ = options.data_root + "/" + addon->manifest_.name;
  std::error_code error;
  std::filesystem::create_directories(addon->state_dir_, error);
  if (error) {
    return Status(Code::kInternal,
                  "cannot create its state folder " + addon->state_dir_ + ": " + error.message());
  }
  addon->host_->SetIdentity(addon->manifest_.name, addon->state_dir_);
  return addon;
}

LoadedAddon::~LoadedAddon() {
  if (host_ != nullptr) host_->StopServingHttp(call_timeout_);
  const std::string why = fault();
  if (why.empty() && addon_ != nullptr && addon_->mk8s_on_unload != nullptr) {
    const auto unload = addon_->mk8s_on_unload;
    void* ctx = addon_->addon_ctx;
    (void)Invoke(
        "mk8s_on_unload",
        [unload, ctx](mk8s_message_out*) {
          unload(ctx);
          return MK8S_OK;
        },
        call_timeout_);
  }
  if (host_ != nullptr) host_->Close();
  if (!fault().empty() && library_ != nullptr) {
    // Its code may still run on an abandoned thread or its own threads: never unmap it.
    spdlog::warn("addon {} is faulted; keeping {} loaded and its context allocated",
                 manifest_.name.empty() ? path_ : manifest_.name, path_);
    (void)library_.release();
    (void)host_.release();
  }
  thread_.reset();   // joins (or detaches a hung thread)
  library_.reset();  // dlclose
}

void LoadedAddon::SetFault(const std::string& why) {
  std::lock_guard lock(fault_mu_);
  if (fault_.empty()) {
    fault_ = why;
    spdlog::error("addon {} faulted: {}", manifest_.name.empty() ? path_ : manifest_.name, why);
  }
}

std::string LoadedAddon::fault() {
  if (thread_ != nullptr && thread_->CheckStuck(call_timeout_)) {
    SetFault("a callback has been running for more than " + std::to_string(call_timeout_.count()) +
             " ms; restart mk8sd to recover");
  }
  std::lock_guard lock(fault_mu_);
  return fault_;
}

Status LoadedAddon::Invoke(const std::string& what, Body body, std::chrono::milliseconds timeout) {
  if (const std::string why = fault(); !why.empty()) {
    return Status(Code::kUnavailable, "it is faulted: " + why);
  }
  // Everything the task touches lives in `slot`, so a task abandoned by a timeout stays safe.
  struct Slot {
    char buffer[2048] = {0};
    mk8s_message_out out{};
    mk8s_status_t status = MK8S_ERR_INTERNAL;
    bool threw = false;
    std::string exception;
  };
  auto slot = std::make_shared<Slot>();
  Status ran = thread_->Call(
      [slot, body = std::move(body)] {
        slot->out = mk8s_message_out{slot->buffer, sizeof(slot->buffer), 0};
        try {
          slot->status = body(&slot->out);
        } catch (const std::exception& e) {
          slot->threw = true;
          slot->exception = e.what();
        } catch (...) {
          slot->threw = true;
          slot->exception = "of unknown type";
        }
      },
      timeout);
  if (!ran.ok()) {
    const std::string why =
        what + " " + ran.message() + "; the addon is stuck (restart mk8sd to recover)";
    SetFault(why);
    return Status(Code::kDeadlineExceeded, why);
  }
  if (slot->threw) {
    const std::string why = what + " let an exception (" + slot->exception +
                            ") escape through the C ABI; addons must return errors instead "
                            "(the SDK's C++ wrapper does this). Restart mk8sd after fixing it";
    SetFault(why);
    return Status(Code::kInternal, why);
  }
  if (slot->status == MK8S_OK) return Status::Ok();
  const size_t len = std::min(slot->out.len, sizeof(slot->buffer) - 1);
  std::string message(slot->buffer, len);
  if (message.empty()) message = what + " failed with status " + std::to_string(slot->status);
  const Code code = slot->status == MK8S_ERR_INVALID_ARGUMENT ? Code::kInvalidArgument
                    : slot->status == MK8S_ERR_TIMEOUT        ? Code::kDeadlineExceeded
                    : slot->status == MK8S_ERR_UNAVAILABLE    ? Code::kUnavailable
                                                              : Code::kInternal;
  return Status(code, message);
}

Status LoadedAddon::Enable(const ValidatedArgs& args) {
  // The argument strings live in the task's own capture (see Invoke).
  auto storage = std::make_shared<ValidatedArgs>(args);
  const auto enable = addon_->mk8s_on_enable;
  void* ctx = addon_->addon_ctx;
  return Invoke(
      "mk8s_on_enable",
      [enable, ctx, storage](mk8s_message_out* out) {
        std::vector<mk8s_arg_value> values;
        for (const auto& [name, value] : storage->values)
          values.push_back({name.c_str(), value.c_str()});
        mk8s_args_v1 c_args{};
        c_args.abi_version = MK8S_ABI_VERSION;
        c_args.struct_size = sizeof(c_args);
        c_args.values = values.data();
        c_args.count = values.size();
        c_args.raw = storage->raw.c_str();
        return enable(ctx, &c_args, out);
      },
      call_timeout_);
}

Status LoadedAddon::Disable() {
  host_->StopServingHttp(call_timeout_);
  const auto disable = addon_->mk8s_on_disable;
  void* ctx = addon_->addon_ctx;
  return Invoke(
      "mk8s_on_disable", [disable, ctx](mk8s_message_out* out) { return disable(ctx, out); },
      call_timeout_);
}

Status LoadedAddon::Start() {
  const auto start = addon_->mk8s_on_start;
  if (start == nullptr) return Status::Ok();
  void* ctx = addon_->addon_ctx;
  return Invoke(
      "mk8s_on_start", [start, ctx](mk8s_message_out* out) { return start(ctx, out); },
      call_timeout_);
}

void LoadedAddon::Stop() {
  host_->StopServingHttp(call_timeout_);
  if (const auto stop = addon_->mk8s_on_stop; stop != nullptr) {
    void* ctx = addon_->addon_ctx;
    (void)Invoke(
        "mk8s_on_stop",
        [stop, ctx](mk8s_message_out*) {
          stop(ctx);
          return MK8S_OK;
        },
        call_timeout_);
  }
  if (fault().empty()) host_->CancelWatches();
}

AddonHealth LoadedAddon::Health(std::chrono::milliseconds timeout) {
  const auto status = addon_->mk8s_on_status;
  void* ctx = addon_->addon_ctx;
  auto detail = std::make_shared<std::string>();
  Status result = Invoke(
      "mk8s_on_status",
      [status, ctx, detail](mk8s_message_out* out) {
        const mk8s_status_t code = status(ctx, out);
        *detail = std::string(out->data, std::min(out->len, out->capacity - 1));
        return code;
      },
      timeout);
  if (result.ok()) return {true, detail->empty() ? "healthy" : *detail};
  return {false, result.message()};
}

}  // namespace mk8s::addonhost
