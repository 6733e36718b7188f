#include "spiffe/crypto/openssl_util.h"

#include <openssl/err.h>

#include "absl/strings/str_cat.h"

namespace sigil::crypto::internal {

std::string DrainOpenSslErrors() {
  std::string out;
  unsigned long code;
  while ((code = ERR_get_error()) != 0) {
    const char* reason = ERR_reason_error_string(code);
    if (!out.empty()) out += "; ";
    if (reason != nullptr) {
      out += reason;
    } else {
      char buf[256];
      ERR_error_string_n(code, buf, sizeof(buf));
      out += buf;
    }
  }
  return out;
}

std::string WithOpenSslErrors(absl::string_view context) {
  std::string errors = DrainOpenSslErrors();
  if (errors.empty()) return std::string(context);
  return absl::StrCat(context, ": ", errors);
}

}  // namespace sigil::crypto::internal
