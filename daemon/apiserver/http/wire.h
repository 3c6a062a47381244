// Plain-text pieces of the HTTPS transport that need no Beast: building a Request from the
// request line (path percent-decoding, query split, lower-case header names) and the Status JSON
// the transport itself answers with (413, 400, an unanswered request). Internal to http/.
#pragma once

#include <string>
#include <string_view>

#include "apiserver/http/http_types.h"

namespace mk8s::apiserver::http {

// A Request with method, target, and the path (decoded) and raw query taken from the target.
Request MakeRequest(std::string method, std::string target);

// Appends a header with its name lower-cased.
void AddHeader(Request* request, std::string_view name, std::string_view value);

// A metav1.Status failure body. `message` must not need JSON escaping.
std::string StatusJson(int code, std::string_view reason, std::string_view message);

}  // namespace mk8s::apiserver::http
