#include "apiserver/http/string_bio.h"

#include <string>

namespace mk8s::apiserver::http {

BIO_METHOD* NewBufferBioMethod(const char* name) {
  BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, name);
  BIO_meth_set_ctrl(m, [](BIO*, int command, long, void*) -> long {
    return command == BIO_CTRL_FLUSH ? 1 : 0;
  });
  BIO_meth_set_create(m, [](BIO* bio) -> int {
    BIO_set_init(bio, 1);
    return 1;
  });
  return m;
}

BIO_METHOD* StringSinkBioMethod() {
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m = NewBufferBioMethod("mk8s-string-sink");
    BIO_meth_set_write(m, [](BIO* bio, const char* data, int length) -> int {
      auto* out = static_cast<std::string*>(BIO_get_data(bio));
      if (out == nullptr || length < 0) return -1;
      out->append(data, static_cast<size_t>(length));
      return length;
    });
    BIO_meth_set_read(m, [](BIO* bio, char*, int) -> int {
      BIO_clear_retry_flags(bio);
      BIO_set_retry_read(bio);
      return -1;
    });
    return m;
  }();
  return method;
}

}  // namespace mk8s::apiserver::http
