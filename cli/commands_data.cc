// mk8s dbctl: backup/restore of the datastore and direct key access for diagnostics
// (the etcdctl of mk8s). Keys and values are printed as stored.
#include <filesystem>
#include <iostream>

#include "cli/commands.h"
#include "cli/daemon_client.h"
#include "cli/format.h"

namespace mk8s::cli {
namespace {

// The daemon resolves paths on its own filesystem: always hand it an absolute path.
std::string AbsolutePath(const std::string& file) {
  std::error_code error;
  const std::filesystem::path path = std::filesystem::absolute(file, error);
  return error ? file : path.lexically_normal().string();
}

const char* EventTypeName(v1::WatchEvent::Type type) {
  return type == v1::WatchEvent::DELETE ? "DELETE" : "PUT";
}

}  // namespace

int RunDbBackup(const GlobalOptions& global, const std::string& file) {
  const std::string path = AbsolutePath(file);
  DaemonClient client(global.state_dir);
  v1::BackupResponse response;
  if (const CallStatus call = client.Backup(path, &response); !call.ok()) {
    if (call.code == CallCode::kAlreadyExists) {
      return PrintError(path + " already exists: pick a new file name (backup never overwrites)");
    }
    return PrintError(call.message);
  }
  std::cout << "Backed up " << response.keys() << " keys at revision " << response.revision()
            << " to " << path << " (" << response.bytes() << " bytes)\n";
  return kExitOk;
}

int RunDbRestore(const GlobalOptions& global, const std::string& file) {
  const std::string path = AbsolutePath(file);
  DaemonClient client(global.state_dir);
  v1::RestoreResponse response;
  if (const CallStatus call = client.Restore(path, &response); !call.ok()) {
    if (call.code == CallCode::kNotFound) {
      return PrintError("cannot restore from " + path + ": " + call.message);
    }
    return PrintError(call.message);
  }
  std::cout << "Restored " << response.keys() << " keys from " << path
            << "; the datastore is now at revision " << response.revision() << '\n';
  return kExitOk;
}

int RunDbGet(const GlobalOptions& global, const std::string& key) {
  DaemonClient client(global.state_dir);
  v1::GetRequest request;
  request.set_key(key);
  v1::GetResponse response;
  if (const CallStatus call = client.Get(request, &response); !call.ok()) {
    if (call.code == CallCode::kNotFound) return PrintError("key " + key + " not found");
    return PrintError(call.message);
  }
  std::cout << response.kv().value() << '\n';
  return kExitOk;
}

int RunDbPut(const GlobalOptions& global, const DbPutOptions& options) {
  DaemonClient client(global.state_dir);
  v1::PutRequest request;
  request.set_key(options.key);
  request.set_value(options.value);
  request.set_expected_mod_revision(options.expect_revision);
  request.set_create_only(options.create_only);
  v1::PutResponse response;
  if (const CallStatus call = client.Put(request, &response); !call.ok()) {
    switch (call.code) {
      case CallCode::kAlreadyExists:
        return PrintError("key " + options.key + " already exists (--create-only)");
      case CallCode::kConflict:
      case CallCode::kFailedPrecondition:
        return PrintError("key " + options.key + " was not at revision " +
                          std::to_string(options.expect_revision) + ": " + call.message);
      default:
        return PrintError(call.message);
    }
  }
  std::cout << "OK (revision " << response.revision() << ")\n";
  return kExitOk;
}

int RunDbDelete(const GlobalOptions& global, const std::string& key) {
  DaemonClient client(global.state_dir);
  v1::DeleteRequest request;
  request.set_key(key);
  v1::DeleteResponse response;
  if (const CallStatus call = client.Delete(request, &response); !call.ok()) {
    if (call.code == CallCode::kNotFound) return PrintError("key " + key + " not found");
    return PrintError(call.message);
  }
  std::cout << "Deleted " << key << " (revision " << response.revision() << ")\n";
  return kExitOk;
}

int RunDbList(const GlobalOptions& global, const DbListOptions& options) {
  DaemonClient client(global.state_dir);
  v1::ListRequest request;
  request.set_prefix(options.prefix);
  request.set_limit(options.limit);
  request.set_keys_only(!options.long_format);
  v1::ListResponse response;
  if (const CallStatus call = client.List(request, &response); !call.ok()) {
    return PrintError(call.message);
  }
  for (const v1::KeyValue& kv : response.kvs()) {
    if (options.long_format) {
      std::cout << kv.mod_revision() << '\t' << kv.create_revision() << '\t' << kv.value().size()
                << '\t';
    }
    std::cout << kv.key() << '\n';
  }
  if (response.more()) {
    std::cout.flush();
    std::cerr << "(more keys after " << response.kvs(response.kvs_size() - 1).key()
              << "; raise --limit to see them)\n";
  }
  return kExitOk;
}

int RunDbWatch(const GlobalOptions& global, const DbWatchOptions& options) {
  DaemonClient client(global.state_dir);
  v1::WatchRequest request;
  request.set_prefix(options.prefix);
  request.set_after_revision(options.after_revision);
  // One line per event, flushed at once so `dbctl watch | grep` sees events as they happen.
  const CallStatus call = client.Watch(request, [](const v1::WatchEvent& event) {
    std::cout << EventTypeName(event.type()) << ' ' << event.kv().key()
              << " rev=" << event.kv().mod_revision();
    if (event.type() == v1::WatchEvent::PUT) std::cout << ' ' << event.kv().value();
    std::cout << std::endl;
    return true;
  });
  if (!call.ok()) return PrintError(call.message);
  return kExitOk;
}

}  // namespace mk8s::cli
