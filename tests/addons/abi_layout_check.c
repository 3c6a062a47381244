/* Compiled as C11: proves abi.h is pure C, and pins the layout of the ABI structs on LP64 Linux.
 * A failure here means the ABI changed: bump MK8S_ABI_VERSION (see abi_hash_test.cc). */
#include <mk8s/abi.h>

#define PIN(type, field, offset) \
  _Static_assert(offsetof(type, field) == (offset), #type "." #field " moved: bump the ABI version")
#define SIZE(type, size) _Static_assert(sizeof(type) == (size), #type " changed size")

#if defined(__x86_64__) || defined(__aarch64__)
SIZE(mk8s_borrowed_str, 16);
SIZE(mk8s_message_out, 24);
PIN(mk8s_arg_spec_v1, name, 8);
PIN(mk8s_arg_spec_v1, max_value, 64);
SIZE(mk8s_arg_spec_v1, 72);
PIN(mk8s_manifest_v1, args, 40);
PIN(mk8s_manifest_v1, needs_root, 72);
SIZE(mk8s_manifest_v1, 80);
PIN(mk8s_args_v1, raw, 24);
PIN(mk8s_host_config_v1, daemon_state_dir, 64);
PIN(mk8s_api_request_v1, timeout_ms, 88);
PIN(mk8s_api_response_v1, body, 16);
PIN(mk8s_watch_request_v1, user_data, 48);
PIN(mk8s_host_api_v1, mk8s_host_log, 24);
PIN(mk8s_host_api_v1, mk8s_host_listen, 80);
PIN(mk8s_host_api_v1, mk8s_host_serve_http, 88); /* 1.1 */
PIN(mk8s_host_api_v1, mk8s_host_http_write, 96);  /* 1.1 */
PIN(mk8s_host_api_v1, mk8s_host_http_stream_begin, 104); /* 1.2 */
PIN(mk8s_host_api_v1, mk8s_host_http_stream_write, 112); /* 1.2 */
PIN(mk8s_host_api_v1, mk8s_host_http_stream_end, 120);   /* 1.2 */
SIZE(mk8s_host_api_v1, 128);
PIN(mk8s_http_request_v1, user, 72);
SIZE(mk8s_http_request_v1, 88);
PIN(mk8s_http_response_v1, content_type, 16);
PIN(mk8s_http_response_v1, body, 40);
SIZE(mk8s_http_response_v1, 48);
PIN(mk8s_http_route_v1, user_data, 24);
SIZE(mk8s_http_route_v1, 32);
_Static_assert(MK8S_HOST_API_V1_MIN_SIZE == 88, "the 1.0 minimum of mk8s_host_api_v1 is fixed");
_Static_assert(MK8S_HOST_API_V1_1_MIN_SIZE == 104, "the 1.1 minimum of mk8s_host_api_v1 is fixed");
_Static_assert(MK8S_HOST_API_V1_2_MIN_SIZE == 128, "the 1.2 minimum of mk8s_host_api_v1 is fixed");
_Static_assert(MK8S_ERR_CLOSED == 8, "status codes never change");
_Static_assert(MK8S_HTTP_STREAM_MAX_BUFFERED == 1048576, "the stream bound is part of the ABI");
PIN(mk8s_addon_v1, mk8s_on_enable, 24);
PIN(mk8s_addon_v1, mk8s_on_unload, 64);
SIZE(mk8s_addon_v1, 72);
_Static_assert(MK8S_ADDON_V1_MIN_SIZE == 72, "the 1.0 minimum of mk8s_addon_v1 is fixed forever");
_Static_assert(MK8S_MANIFEST_V1_MIN_SIZE == 76, "the 1.0 minimum of mk8s_manifest_v1 is fixed");
#endif

int mk8s_abi_layout_checked(void) { return 1; }
