#include "apiserver/http/wire.h"

#include <cctype>
#include <utility>

namespace mk8s::apiserver::http {

std::string PercentDecode(std::string_view in) {
  if (in.find('%') == std::string_view::npos) return std::string(in);  // the common case
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size() && std::isxdigit(static_cast<unsigned char>(in[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(in[i + 2]))) {
      out.push_back(static_cast<char>(std::stoi(std::string(in.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

std::string StatusJson(int code, std::string_view reason, std::string_view message) {
  return "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
         "\"message\":\"" +
         std::string(message) + "\",\"reason\":\"" + std::string(reason) +
         "\",\"code\":" + std::to_string(code) + "}";
}

Request MakeRequest(std::string method, std::string target) {
  Request request;
  request.method = std::move(method);
  request.target = std::move(target);
  const size_t question = request.target.find('?');
  request.path = PercentDecode(std::string_view(request.target).substr(0, question));
  if (question != std::string::npos) request.query = request.target.substr(question + 1);
  return request;
}

void AddHeader(Request* request, std::string_view name, std::string_view value) {
  std::string lower(name);
  for (char& c : lower) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');  // ASCII only, as HTTP is
  }
  request->headers.push_back(Header{std::move(lower), std::string(value)});
}

}  // namespace mk8s::apiserver::http
