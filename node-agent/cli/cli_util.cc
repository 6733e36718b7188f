#include "node-agent/cli/cli_util.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace sigil::agent::cli {

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

absl::Status UnixError(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("workload endpoint unix socket URI ", what));
}

}  // namespace

absl::StatusOr<std::string> ParseEndpointSocket(absl::string_view address) {
  size_t colon = address.find(':');
  // A scheme is a letter followed by letters, digits, '+', '-' or '.'
  // (RFC 3986 §3.1); anything else before the first ':' means none.
  bool has_scheme = colon != absl::string_view::npos && colon > 0 &&
                    absl::ascii_isalpha(static_cast<unsigned char>(address[0]));
  for (size_t i = 0; has_scheme && i < colon; ++i) {
    unsigned char c = static_cast<unsigned char>(address[i]);
    has_scheme = absl::ascii_isalnum(c) || c == '+' || c == '-' || c == '.';
  }
  std::string scheme = has_scheme ? absl::AsciiStrToLower(address.substr(0, colon)) : "";
  if (scheme == "tcp") {
    return absl::InvalidArgumentError(
        "workload endpoint socket URI has the tcp:// scheme, but sigil-agent serves the "
        "Workload API on a Unix socket only: use unix:///path");
  }
  if (scheme != "unix") {
    return absl::InvalidArgumentError(
        "workload endpoint socket URI must have a tcp:// or unix:// scheme");
  }
  absl::string_view rest = address.substr(colon + 1);

  // Split off the fragment and the query first, as a URI parser does.
  size_t hash = rest.find('#');
  if (hash != absl::string_view::npos) {
    if (hash + 1 < rest.size()) return UnixError("must not include a fragment");
    rest = rest.substr(0, hash);
  }
  size_t question = rest.find('?');
  if (question != absl::string_view::npos) {
    if (question + 1 < rest.size()) return UnixError("must not include query values");
    rest = rest.substr(0, question);
  }

  if (absl::StartsWith(rest, "//")) {
    rest.remove_prefix(2);
    size_t slash = rest.find('/');
    absl::string_view authority = rest.substr(0, slash);
    if (absl::StrContains(authority, '@')) return UnixError("must not include user info");
    if (!authority.empty()) {
      return UnixError(absl::StrCat("must not include a host (", GoQuote(authority),
                                    "); use unix:///absolute/path"));
    }
    rest = slash == absl::string_view::npos ? absl::string_view() : rest.substr(slash);
  } else if (!rest.empty() && rest[0] != '/') {
    return UnixError("must not be opaque");
  }
  if (rest.empty()) return UnixError("must include a path");

  std::string path;
  path.reserve(rest.size());
  for (size_t i = 0; i < rest.size(); ++i) {
    if (rest[i] != '%') {
      path += rest[i];
      continue;
    }
    int hi = i + 2 < rest.size() ? HexValue(rest[i + 1]) : -1;
    int lo = i + 2 < rest.size() ? HexValue(rest[i + 2]) : -1;
    if (hi < 0 || lo < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "workload endpoint socket is not a valid URI: invalid URL escape ",
          GoQuote(rest.substr(i, std::min<size_t>(3, rest.size() - i)))));
    }
    path += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  if (path.find('\0') != std::string::npos) return UnixError("must not contain a NUL byte");
  return path;
}

}  // namespace sigil::agent::cli
