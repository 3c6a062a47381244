#include "apiserver/http/wire.h"

#include <cctype>
#include <utility>

#include "common/url_encoding.h"

namespace mk8s::apiserver::http {

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
  request.path =
      common::PercentDecode(std::string_view(request.target).substr(0, question), false);
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
