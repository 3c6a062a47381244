// Decoding of URL paths and query strings, shared by the API server, the kubelet's HTTPS API and
// its streaming server. Pure functions; no allocation beyond the returned values.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mk8s::common {

// "%41" -> "A". A malformed escape ("%4", "%zz") stays as it is. With `plus_is_space` a '+'
// becomes ' ' (query strings, application/x-www-form-urlencoded); paths keep their '+'.
std::string PercentDecode(std::string_view in, bool plus_is_space);

// "a=1&b=x%20y&c" -> {{"a","1"},{"b","x y"},{"c",""}}: keys and values decoded as query
// components, in order, repeated keys kept, empty items ("a=1&&b=2") skipped.
std::vector<std::pair<std::string, std::string>> ParseQuery(std::string_view raw);

}  // namespace mk8s::common
