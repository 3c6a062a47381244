/* mk8s addon ABI: the stable, pure C contract between mk8sd (the host) and addons.
 *
 * Rules (DESIGN.md §4):
 *  - Only <stdint.h> and <stddef.h>. No C++ types and no exceptions cross this boundary: every
 *    call returns an mk8s_status_t plus, where it can fail, a message written into a
 *    host-owned mk8s_message_out.
 *  - Every struct begins with `uint32_t abi_version; uint32_t struct_size;`. The reader of a
 *    struct refuses another MAJOR version and reads only the fields that lie inside struct_size.
 *    New fields are only ever APPENDED, with a MINOR bump; anything else is a MAJOR bump.
 *    tests/addons/abi_hash_test.cc fails when this file changes without a version bump.
 *  - Naming: mk8s_on_* is implemented by the addon, mk8s_host_* by the daemon.
 *  - Ownership is in the type names:
 *      mk8s_borrowed_str   (ptr,len) owned by the caller, valid only for the call unless the
 *                          comment says otherwise; the callee copies what it keeps.
 *      mk8s_host_bytes     allocated by the host, OWNED BY THE ADDON once returned; release it
 *                          with host->mk8s_host_free_bytes.
 *      mk8s_message_out    a host-owned buffer the addon may write into during the call only.
 *      const char*         NUL-terminated; each field's comment names owner and lifetime.
 *  - Handles (mk8s_host_ctx, mk8s_watch_handle, mk8s_http_stream) are opaque.
 *
 * Symbols an addon exports (C linkage, default visibility):
 *    const uint32_t mk8s_addon_abi_version = MK8S_ABI_VERSION;       read BEFORE any call
 *    const mk8s_addon_v1* mk8s_addon_init(const mk8s_host_api_v1*);  then called once
 * Lifecycle, driven by the host on the addon's own thread (one call at a time):
 *    dlopen -> version check -> init -> [enable(args) -> start ... stop -> disable] -> unload
 * A failed step undoes the earlier ones in reverse order. See sdk/README.md.
 */
#ifndef MK8S_SDK_ABI_H_
#define MK8S_SDK_ABI_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- versions */

#define MK8S_ABI_VERSION_MAJOR 1u
#define MK8S_ABI_VERSION_MINOR 2u
#define MK8S_ABI_VERSION ((MK8S_ABI_VERSION_MAJOR << 16) | MK8S_ABI_VERSION_MINOR)
#define MK8S_ABI_MAJOR_OF(version) ((uint32_t)(version) >> 16)

/* The exported symbol names, for hosts that look them up. */
#define MK8S_ADDON_ABI_VERSION_SYMBOL "mk8s_addon_abi_version"
#define MK8S_ADDON_INIT_SYMBOL "mk8s_addon_init"

/* ---------------------------------------------------------------- status */

typedef int32_t mk8s_status_t;
#define MK8S_OK 0
#define MK8S_ERR_INVALID_ARGUMENT 1 /* the caller's input is wrong */
#define MK8S_ERR_NOT_FOUND 2
#define MK8S_ERR_UNAVAILABLE 3 /* a dependency is down or the host is shutting down; retry */
#define MK8S_ERR_TIMEOUT 4
#define MK8S_ERR_INTERNAL 5   /* a bug or an I/O failure */
#define MK8S_ERR_UNHEALTHY 6  /* mk8s_on_status only: running but not healthy */
#define MK8S_ERR_EXCEPTION 7  /* the C++ wrapper caught an exception (message says which) */
#define MK8S_ERR_CLOSED 8     /* ABI 1.2, streams only: the other side is gone for good (the HTTP
                                 client disconnected, or the host ended the stream); stop
                                 producing and end the stream */

/* ---------------------------------------------------------------- buffers */

/* A string or byte range owned by whoever passes it; valid for the call only. Not
 * NUL-terminated unless stated. `ptr` may be NULL when `len` is 0. */
typedef struct mk8s_borrowed_str {
  const char* ptr;
  size_t len;
} mk8s_borrowed_str;

/* Bytes allocated by the host and handed to the addon, which then owns them and must release
 * them with mk8s_host_api_v1.mk8s_host_free_bytes (never free()). data[len] is a NUL byte. */
typedef struct mk8s_host_bytes {
  char* data;
  size_t len;
} mk8s_host_bytes;

/* A message the addon returns (an error, or a health detail). The buffer `data` of `capacity`
 * bytes is OWNED BY THE HOST and writable only during the call that received it. The addon
 * copies at most capacity-1 bytes, NUL-terminates, and sets `len`. mk8s_message_set in the C++
 * wrapper (addon.hpp) does this. */
typedef struct mk8s_message_out {
  char* data;
  size_t capacity;
  size_t len;
} mk8s_message_out;

/* ---------------------------------------------------------------- manifest (addon-owned) */

typedef int32_t mk8s_arg_type_t;
#define MK8S_ARG_STRING 0    /* any text (optionally matching `pattern`) */
#define MK8S_ARG_INT 1       /* decimal integer within [min_value, max_value] */
#define MK8S_ARG_BOOL 2      /* true/false/yes/no/1/0, normalized to "true"/"false" */
#define MK8S_ARG_ENUM 3      /* one of `choices` (comma-separated) */
#define MK8S_ARG_IPV4_LIST 4 /* comma-separated IPv4 addresses, at least one */

/* One argument an addon accepts. Every pointer is OWNED BY THE ADDON and must stay valid until
 * mk8s_on_unload returns (static storage is the usual choice). The host validates user input
 * against this schema before calling the addon. */
typedef struct mk8s_arg_spec_v1 {
  uint32_t abi_version;
  uint32_t struct_size;
  const char* name;          /* [a-z][a-z0-9-]*, unique within the addon */
  const char* help;          /* one line, shown by `mk8s addons list` */
  mk8s_arg_type_t type;
  int32_t required;          /* non-zero: must be given (no default) */
  const char* default_value; /* NULL: no default (the argument is then absent unless given) */
  const char* choices;       /* MK8S_ARG_ENUM: "a,b,c"; otherwise NULL */
  const char* pattern;       /* MK8S_ARG_STRING: ECMAScript regex the whole value must match, or NULL */
  int64_t min_value;         /* MK8S_ARG_INT bounds (inclusive); ignored for other types */
  int64_t max_value;
} mk8s_arg_spec_v1;

/* What an addon is. Every pointer is OWNED BY THE ADDON, valid until mk8s_on_unload returns. */
typedef struct mk8s_manifest_v1 {
  uint32_t abi_version;
  uint32_t struct_size;
  const char* name;        /* [a-z][a-z0-9-]*, what users type in `mk8s enable NAME` */
  const char* version;     /* the addon's own version, e.g. "1.0.0" */
  const char* description; /* one line, shown in `mk8s status` */
  const char* repository;  /* "core" for the addons shipped with mk8s; NULL means "core" */
  /* Arguments: an array of `arg_count` pointers (each struct carries its own struct_size). */
  const mk8s_arg_spec_v1* const* args;
  size_t arg_count;
  /* Names of addons that must be enabled first. */
  const char* const* depends_on;
  size_t depends_on_count;
  int32_t needs_root; /* non-zero: refuse to enable unless mk8sd runs as root */
} mk8s_manifest_v1;

/* ---------------------------------------------------------------- arguments passed to enable */

/* One validated, normalized argument value. Both strings are BORROWED from the host for the
 * duration of mk8s_on_enable only. */
typedef struct mk8s_arg_value {
  const char* name;
  const char* value;
} mk8s_arg_value;

typedef struct mk8s_args_v1 {
  uint32_t abi_version;
  uint32_t struct_size;
  const mk8s_arg_value* values; /* host-owned array, valid for the call; defaults filled in */
  size_t count;
  const char* raw;              /* the text the user typed after "NAME:", host-owned, may be "" */
} mk8s_args_v1;

/* ---------------------------------------------------------------- host services */

typedef struct mk8s_host_ctx mk8s_host_ctx;         /* opaque; one per loaded addon */
typedef struct mk8s_watch_handle mk8s_watch_handle; /* opaque; a live list+watch */

typedef int32_t mk8s_log_level_t;
#define MK8S_LOG_DEBUG 0
#define MK8S_LOG_INFO 1
#define MK8S_LOG_WARN 2
#define MK8S_LOG_ERROR 3

/* Cluster configuration. The struct and every string in it are OWNED BY THE HOST and valid
 * from mk8s_addon_init until mk8s_on_unload returns. Strings are NUL-terminated. */
typedef struct mk8s_host_config_v1 {
  uint32_t abi_version;
  uint32_t struct_size;
  const char* addon_name;     /* this addon's name as the host knows it ("" during init) */
  const char* state_dir;      /* this addon's own folder (exists, writable; survives restarts;
                                 "" during init: it is named after the manifest) */
  const char* cluster_domain; /* "cluster.local" */
  const char* service_cidr;   /* "10.152.183.0/24" */
  const char* cluster_dns_ip; /* "10.152.183.10" */
  const char* node_ips;       /* this node's IPv4 addresses, comma-separated */
  const char* api_server_url; /* "https://127.0.0.1:16443" (for out-of-process helpers) */
  const char* daemon_state_dir; /* mk8sd's state folder (read-only for addons) */
} mk8s_host_config_v1;

/* One API request: JSON in, JSON out. Strings are BORROWED for the call. */
typedef struct mk8s_api_request_v1 {
  uint32_t abi_version;
  uint32_t struct_size;
  mk8s_borrowed_str method;       /* "GET", "POST", "PUT", "PATCH", "DELETE" */
  mk8s_borrowed_str path;         /* "/api/v1/namespaces/default/configmaps/x" (unescaped) */
  mk8s_borrowed_str query;        /* encoded, without '?'; may be empty */
  mk8s_borrowed_str content_type; /* empty: application/json when there is a body */
  mk8s_borrowed_str body;
  int64_t timeout_ms;             /* <= 0: the host's default (30 s) */
} mk8s_api_request_v1;

/* Filled by the host. The addon sets abi_version/struct_size before the call (the host writes
 * only inside struct_size) and then OWNS `body` (release with mk8s_host_free_bytes, also when
 * the call fails). */
typedef struct mk8s_api_response_v1 {
  uint32_t abi_version;
  uint32_t struct_size;
  int32_t http_status; /* 0 when no answer arrived; then body holds the cause */
  mk8s_host_bytes body;
} mk8s_api_response_v1;

typedef int32_t mk8s_watch_event_t;
#define MK8S_WATCH_ADDED 1
#define MK8S_WATCH_MODIFIED 2
#define MK8S_WATCH_DELETED 3

/* Called by the host on the addon's own thread (never concurrently with another callback or
 * lifecycle call of this addon). `object_json` is BORROWED for the call. For MODIFIED only the
 * new object is given. Must not block for long: it counts against the addon's call timeout. */
typedef void (*mk8s_on_watch_event_fn)(void* user_data, mk8s_watch_event_t type,
                                       mk8s_borrowed_str object_json);

/* A list+watch subscription (an informer: it re-lists and resumes by itself). */
typedef struct mk8s_watch_request_v1 {
  uint32_t abi_version;
  uint32_t struct_size;
  const char* api_path;       /* collection path without namespace: "/api/v1/configmaps",
                                 "/apis/discovery.k8s.io/v1/endpointslices"; borrowed */
  const char* namespace_name; /* NULL or "": all namespaces (and cluster-scoped kinds); borrowed */
  const char* label_selector; /* NULL or ""; borrowed */
  const char* field_selector; /* NULL or ""; borrowed */
  mk8s_on_watch_event_fn on_event;
  void* user_data; /* OWNED BY THE ADDON; must stay valid until mk8s_host_watch_cancel returns */
} mk8s_watch_request_v1;

typedef int32_t mk8s_socket_type_t;
#define MK8S_SOCKET_TCP 1
#define MK8S_SOCKET_UDP 2

/* ---------------------------------------------------------------- HTTP routes (ABI 1.1) */

/* An addon's HTTP routes are served by the API server under /addons/<addon name>/<prefix>...,
 * after its authentication (client certificate or token, as for every API request; anonymous
 * requests get 401), so `mk8s kubectl get --raw /addons/NAME/...` reaches them. */

typedef struct mk8s_http_writer mk8s_http_writer; /* opaque; the response body being built */
typedef struct mk8s_http_stream mk8s_http_stream; /* opaque; a streamed response (ABI 1.2) */

/* One request to a route. The struct and every string in it are BORROWED for the call. */
typedef struct mk8s_http_request_v1 {
  uint32_t abi_version;
  uint32_t struct_size;
  mk8s_borrowed_str method; /* "GET", "POST", ... */
  mk8s_borrowed_str path;   /* the percent-decoded path below /addons/<name>: starts with the
                               route's prefix ("/hello/x") */
  mk8s_borrowed_str query;  /* encoded, without '?'; may be empty */
  mk8s_borrowed_str body;
  mk8s_borrowed_str user;   /* the authenticated user name */
} mk8s_http_request_v1;

/* The answer, filled by the handler. The struct is OWNED BY THE HOST and writable during the
 * call only. The host presets status 200 and an empty content_type (sent as
 * "application/json"); the body is appended with host->mk8s_host_http_write. */
typedef struct mk8s_http_response_v1 {
  uint32_t abi_version;
  uint32_t struct_size;
  int32_t status;                /* an HTTP status, 100..599 (anything else: 500) */
  mk8s_message_out content_type; /* host-owned buffer, as mk8s_message_out */
  mk8s_http_writer* body;        /* host-owned; valid during the call only */
} mk8s_http_response_v1;

/* Handles one request, on the addon's own host thread (one call at a time with its other
 * callbacks, under the host's call timeout). A status other than MK8S_OK makes the host answer
 * 500 with the text of `message_out`. Must not throw. */
typedef mk8s_status_t (*mk8s_on_http_fn)(void* user_data, const mk8s_http_request_v1* request,
                                         mk8s_http_response_v1* response,
                                         mk8s_message_out* message_out);

/* A route: every request whose path below /addons/<name> equals `prefix` or continues it with
 * '/' goes to `on_request` (the longest matching prefix wins). */
typedef struct mk8s_http_route_v1 {
  uint32_t abi_version;
  uint32_t struct_size;
  const char* prefix; /* "/" or "/segment[/segment...]" without a trailing '/'; borrowed */
  mk8s_on_http_fn on_request;
  void* user_data; /* OWNED BY THE ADDON; must stay valid until the host drops the route: just
                      before it calls mk8s_on_stop (or mk8s_on_disable / mk8s_on_unload) */
} mk8s_http_route_v1;

/* The host's services. The struct is OWNED BY THE HOST and valid from mk8s_addon_init until
 * mk8s_on_unload returns. Every function is thread-safe, may be called from any thread the
 * addon owns or from its callbacks, never throws, and never calls back into the addon
 * synchronously. `ctx` is always host_api->ctx. */
typedef struct mk8s_host_api_v1 {
  uint32_t abi_version;
  uint32_t struct_size;
  mk8s_host_ctx* ctx;
  const mk8s_host_config_v1* config;

  /* Logs one line into mk8sd's log, prefixed with the addon's name. */
  void (*mk8s_host_log)(mk8s_host_ctx* ctx, mk8s_log_level_t level, mk8s_borrowed_str message);

  /* Releases bytes the host handed over (mk8s_host_bytes). NULL is a no-op. */
  void (*mk8s_host_free_bytes)(mk8s_host_ctx* ctx, char* data);

  /* A request to the Kubernetes API server, as identity "system:addon:<name>". Blocks until the
   * answer or the timeout. MK8S_OK when an HTTP answer arrived (any status: check http_status);
   * otherwise http_status is 0 and body holds the cause. */
  mk8s_status_t (*mk8s_host_api_request)(mk8s_host_ctx* ctx, const mk8s_api_request_v1* request,
                                         mk8s_api_response_v1* response_out);

  /* Server-side apply of every object in `manifest` (YAML, multi-document, or JSON), with
   * field manager "mk8s-addon-<name>" and force. Creates what is missing. Stops at the first
   * failure, naming the object in `error_out`. */
  mk8s_status_t (*mk8s_host_apply)(mk8s_host_ctx* ctx, mk8s_borrowed_str manifest,
                                   mk8s_message_out* error_out);

  /* Deletes every object named in `manifest` (same format as apply); objects already gone are
   * fine. */
  mk8s_status_t (*mk8s_host_delete_manifest)(mk8s_host_ctx* ctx, mk8s_borrowed_str manifest,
                                             mk8s_message_out* error_out);

  /* Starts a list+watch. On MK8S_OK *handle_out is a live handle the addon must cancel (the
   * host also cancels leftovers after mk8s_on_stop / mk8s_on_disable). Events arrive on the
   * addon's thread: first an ADDED per existing object, then changes. */
  mk8s_status_t (*mk8s_host_watch)(mk8s_host_ctx* ctx, const mk8s_watch_request_v1* request,
                                   mk8s_watch_handle** handle_out, mk8s_message_out* error_out);

  /* Stops a watch and frees the handle. After it returns no callback for it runs or will run
   * (when called from another thread it waits for a running callback to finish). */
  void (*mk8s_host_watch_cancel)(mk8s_host_ctx* ctx, mk8s_watch_handle* handle);

  /* Opens a listening socket (TCP: bound and listening; UDP: bound) on `address` (IPv4 text,
   * e.g. "0.0.0.0" or one of config->node_ips) and `port` (0 = any free port). The fd is
   * close-on-exec, SO_REUSEADDR, and OWNED BY THE ADDON (close it in mk8s_on_stop).
   * *bound_port_out receives the actual port. */
  mk8s_status_t (*mk8s_host_listen)(mk8s_host_ctx* ctx, mk8s_socket_type_t type,
                                    const char* address, uint16_t port, int* fd_out,
                                    uint16_t* bound_port_out, mk8s_message_out* error_out);

  /* ---- ABI 1.1: present when struct_size >= MK8S_HOST_API_V1_1_MIN_SIZE */

  /* Serves `route` until the host drops it (see mk8s_http_route_v1). Typically called from
   * mk8s_on_start. MK8S_ERR_INVALID_ARGUMENT for a malformed prefix or one this addon serves
   * already; MK8S_ERR_UNAVAILABLE when this daemon runs no API server. */
  mk8s_status_t (*mk8s_host_serve_http)(mk8s_host_ctx* ctx, const mk8s_http_route_v1* route,
                                        mk8s_message_out* error_out);

  /* Appends `bytes` to a response body (only during the handler's call). After
   * mk8s_host_http_stream_begin on that response, the bytes go to the stream, in order, without
   * the stream's bound (they are sent once the handler returns). */
  void (*mk8s_host_http_write)(mk8s_host_ctx* ctx, mk8s_http_writer* body,
                               mk8s_borrowed_str bytes);

  /* ---- ABI 1.2: present when struct_size >= MK8S_HOST_API_V1_2_MIN_SIZE
   *
   * Streamed responses: a handler that cannot build its whole body during its call (a large
   * blob, a log that trickles) turns its response into a stream, returns, and goes on writing
   * from any thread it owns. The body is sent with Transfer-Encoding: chunked.
   *
   * Lifetime of a stream handle (OWNED BY THE ADDON from stream_begin until stream_end):
   *  - the head (status and content type, as they are in the response struct when the handler
   *    returns) and the bytes written so far are sent once the handler returns MK8S_OK. If the
   *    handler fails instead, the client gets the 500 as without a stream, and every write
   *    answers MK8S_ERR_CLOSED;
   *  - the client may go away at any time: from then on every write answers MK8S_ERR_CLOSED;
   *  - the host ends every stream still open when it stops serving the addon: right after it
   *    drops the addon's routes, just before it calls mk8s_on_stop (or mk8s_on_disable /
   *    mk8s_on_unload). The client then sees the end of the body (what was written, then the
   *    terminating chunk) and every write answers MK8S_ERR_CLOSED at once, also one that is
   *    waiting, so producer threads can be joined in mk8s_on_stop;
   *  - in every case the handle stays valid, and the addon still calls stream_end exactly once
   *    (typically when a write failed or the body is complete). A handle the addon never ends is
   *    freed by the host after mk8s_on_unload returns (and logged as a leak).
   * Calls on one handle may come from any thread of the addon, also concurrently, except
   * stream_end: it must not overlap another call on that handle, and no call may follow it. */

  /* Turns `response` into a stream. Only on the addon's host thread, during the handler's call
   * that received `response`, at most once per response. On MK8S_OK *stream_out is a live
   * handle OWNED BY THE ADDON; the bytes already written with mk8s_host_http_write become the
   * start of the body. MK8S_ERR_INVALID_ARGUMENT when called elsewhere or twice;
   * MK8S_ERR_UNAVAILABLE when the host is stopping the addon. */
  mk8s_status_t (*mk8s_host_http_stream_begin)(mk8s_host_ctx* ctx, mk8s_http_response_v1* response,
                                               mk8s_http_stream** stream_out,
                                               mk8s_message_out* error_out);

  /* Queues `bytes` (copied; at most MK8S_HTTP_STREAM_MAX_WRITE) after the earlier ones. The host
   * keeps at most MK8S_HTTP_STREAM_MAX_BUFFERED bytes queued and unsent per stream: while the
   * new bytes do not fit, the call blocks, up to `timeout_ms` (0: not at all; < 0: without a
   * limit, until they fit or the stream closes). Returns
   *   MK8S_OK                    all of `bytes` is queued (a 0-byte write only reports that
   *                              the stream is still open);
   *   MK8S_ERR_TIMEOUT           they did not fit in time: NONE of them is queued, the stream
   *                              stays open, write them again later. Also at once when the
   *                              handler itself writes more than the bound before it returns
   *                              (nothing is sent before that, so waiting could not help);
   *   MK8S_ERR_CLOSED            the client is gone or the host ended the stream (see above);
   *   MK8S_ERR_INVALID_ARGUMENT  no stream, or more than MK8S_HTTP_STREAM_MAX_WRITE bytes. */
  mk8s_status_t (*mk8s_host_http_stream_write)(mk8s_host_ctx* ctx, mk8s_http_stream* stream,
                                               mk8s_borrowed_str bytes, int64_t timeout_ms);

  /* Ends the body (the terminating chunk follows the queued bytes, which are still sent) and
   * frees the handle. Never blocks. Ending before the handler returned is fine: the whole body
   * is then sent once it returns. NULL is a no-op. */
  void (*mk8s_host_http_stream_end)(mk8s_host_ctx* ctx, mk8s_http_stream* stream);
} mk8s_host_api_v1;

/* ---------------------------------------------------------------- what the addon implements */

/* Returned by mk8s_addon_init. The struct, the manifest and addon_ctx are OWNED BY THE ADDON and
 * must stay valid until mk8s_on_unload returns. Every callback gets addon_ctx back, runs on the
 * addon's own host thread (one at a time) under the host's timeout, and must not throw. A
 * callback that returns an error fills `message_out` with one line saying why and what to do. */
typedef struct mk8s_addon_v1 {
  uint32_t abi_version;
  uint32_t struct_size;
  const mk8s_manifest_v1* manifest;
  void* addon_ctx;

  /* Turns the addon on: idempotent (also called at every daemon start for an enabled addon, and
   * again with new arguments). Typically applies API objects. Required. */
  mk8s_status_t (*mk8s_on_enable)(void* addon_ctx, const mk8s_args_v1* args,
                                  mk8s_message_out* message_out);
  /* Removes what enable created. Called after mk8s_on_stop. Required. */
  mk8s_status_t (*mk8s_on_disable)(void* addon_ctx, mk8s_message_out* message_out);
  /* In-process health: MK8S_OK when healthy, MK8S_ERR_UNHEALTHY (or another error) when not;
   * `message_out` gets a one-line detail either way. Quick (its timeout is short). Required. */
  mk8s_status_t (*mk8s_on_status)(void* addon_ctx, mk8s_message_out* message_out);
  /* Starts the addon's own threads and servers after enable. Optional (NULL). */
  mk8s_status_t (*mk8s_on_start)(void* addon_ctx, mk8s_message_out* message_out);
  /* Stops and joins what start started; must not fail. Optional (NULL). */
  void (*mk8s_on_stop)(void* addon_ctx);
  /* Last call before dlclose: free addon_ctx. Optional (NULL). */
  void (*mk8s_on_unload)(void* addon_ctx);
} mk8s_addon_v1;

/* The smallest struct_size the host accepts for each struct of major version 1: everything up
 * to and including the last field of 1.0. */
#define MK8S_SIZE_UPTO(type, field) (offsetof(type, field) + sizeof(((type*)0)->field))
#define MK8S_ADDON_V1_MIN_SIZE MK8S_SIZE_UPTO(mk8s_addon_v1, mk8s_on_unload)
#define MK8S_MANIFEST_V1_MIN_SIZE MK8S_SIZE_UPTO(mk8s_manifest_v1, needs_root)
#define MK8S_ARG_SPEC_V1_MIN_SIZE MK8S_SIZE_UPTO(mk8s_arg_spec_v1, max_value)
#define MK8S_HOST_API_V1_MIN_SIZE MK8S_SIZE_UPTO(mk8s_host_api_v1, mk8s_host_listen)
/* ABI 1.1 additions: an addon checks host->struct_size against these before using them. */
#define MK8S_HOST_API_V1_1_MIN_SIZE MK8S_SIZE_UPTO(mk8s_host_api_v1, mk8s_host_http_write)
#define MK8S_HTTP_REQUEST_V1_MIN_SIZE MK8S_SIZE_UPTO(mk8s_http_request_v1, user)
#define MK8S_HTTP_RESPONSE_V1_MIN_SIZE MK8S_SIZE_UPTO(mk8s_http_response_v1, body)
#define MK8S_HTTP_ROUTE_V1_MIN_SIZE MK8S_SIZE_UPTO(mk8s_http_route_v1, user_data)
#define MK8S_HOST_CONFIG_V1_MIN_SIZE MK8S_SIZE_UPTO(mk8s_host_config_v1, daemon_state_dir)
/* ABI 1.2 additions: streamed HTTP responses. */
#define MK8S_HOST_API_V1_2_MIN_SIZE MK8S_SIZE_UPTO(mk8s_host_api_v1, mk8s_host_http_stream_end)
#define MK8S_HTTP_STREAM_MAX_BUFFERED ((size_t)1 << 20) /* bytes queued and unsent per stream */
#define MK8S_HTTP_STREAM_MAX_WRITE MK8S_HTTP_STREAM_MAX_BUFFERED /* bytes per write call */

/* The init symbol's type. Called once, after the version check, on a host thread. It must not
 * start threads or call the API (do that in mk8s_on_enable / mk8s_on_start). `host` is OWNED BY
 * THE HOST, valid until mk8s_on_unload returns. Returns NULL on failure (log why through host). */
typedef const mk8s_addon_v1* (*mk8s_addon_init_fn)(const mk8s_host_api_v1* host);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* MK8S_SDK_ABI_H_ */
