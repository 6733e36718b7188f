#include "spiffe/id.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace sigil::spiffe {
namespace {

constexpr absl::string_view kScheme = "spiffe://";
// SPIFFE-ID standard §2.1 (trust domain) and §2.3 (maximum length).
constexpr size_t kMaxTrustDomainBytes = 255;
constexpr size_t kMaxIdBytes = 2048;
// Inputs are quoted in messages, escaped and cut to this many bytes so that a
// hostile multi-kilobyte string cannot flood logs.
constexpr size_t kMaxQuotedBytes = 80;

std::string Quote(absl::string_view s) {
  if (s.size() > kMaxQuotedBytes) {
    return absl::StrCat("\"", absl::CHexEscape(s.substr(0, kMaxQuotedBytes)), "\"... (",
                        s.size(), " bytes)");
  }
  return absl::StrCat("\"", absl::CHexEscape(s), "\"");
}

absl::Status IdError(absl::string_view id, absl::string_view rule) {
  return absl::InvalidArgumentError(absl::StrCat("invalid SPIFFE ID ", Quote(id), ": ", rule));
}

bool IsTrustDomainChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

bool IsPathChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-' || c == '_';
}

// The rule a trust domain name breaks, or "" when it is valid. Each rule has
// its own message so that an operator sees exactly what to fix.
absl::string_view TrustDomainRule(absl::string_view name) {
  if (name.empty()) return "trust domain is missing";
  // Userinfo is checked before the port: "user:pw@host" is a userinfo problem.
  if (absl::StrContains(name, '@')) return "trust domain must not contain userinfo ('@')";
  if (absl::StrContains(name, ':')) return "trust domain must not contain a port (':')";
  for (char c : name) {
    if (IsTrustDomainChar(c)) continue;
    if (c >= 'A' && c <= 'Z') return "trust domain must be lowercase";
    if (c == '%') return "trust domain must not contain percent-encoding ('%')";
    return "trust domain characters are limited to lowercase letters, numbers, dots, dashes, "
           "and underscores";
  }
  if (name.size() > kMaxTrustDomainBytes) return "trust domain is longer than 255 bytes";
  return "";
}

// The rule a path breaks, or "" when it is valid (SPIFFE-ID standard §2.2,
// checked segment by segment from the left as go-spiffe does).
absl::string_view PathRule(absl::string_view path) {
  if (path.empty()) return "";
  if (path[0] != '/') return "path must be empty or start with '/'";
  size_t segment_start = 0;  // index of the '/' opening the current segment
  for (size_t i = 1; i <= path.size(); ++i) {
    if (i < path.size() && path[i] != '/') {
      char c = path[i];
      if (IsPathChar(c)) continue;
      if (c == '%') return "path must not contain percent-encoding ('%')";
      if (c == '?') return "SPIFFE ID must not contain a query ('?')";
      if (c == '#') return "SPIFFE ID must not contain a fragment ('#')";
      return "path segment characters are limited to letters, numbers, dots, dashes, and "
             "underscores";
    }
    absl::string_view segment = path.substr(segment_start + 1, i - segment_start - 1);
    if (segment.empty()) {
      return i == path.size() ? "path must not have a trailing slash"
                              : "path must not contain empty segments ('//')";
    }
    if (segment == "." || segment == "..") {
      return "path must not contain '.' or '..' segments";
    }
    segment_start = i;
  }
  return "";
}

}  // namespace

absl::StatusOr<TrustDomain> TrustDomain::FromString(absl::string_view s) {
  if (s.empty()) return absl::InvalidArgumentError("trust domain cannot be empty");
  // Anything that looks like a URI is parsed as a SPIFFE ID, so that
  // "https://example.org" gets the scheme error rather than a character one.
  if (absl::StrContains(s, ":/")) {
    absl::StatusOr<SpiffeId> id = SpiffeId::FromString(s);
    if (!id.ok()) return id.status();
    return id->trust_domain();
  }
  absl::string_view rule = TrustDomainRule(s);
  if (!rule.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("invalid trust domain ", Quote(s), ": ", rule));
  }
  return TrustDomain(std::string(s));
}

std::string TrustDomain::IdString() const { return absl::StrCat(kScheme, name_); }

absl::StatusOr<SpiffeId> SpiffeId::FromString(absl::string_view s) {
  if (s.empty()) return absl::InvalidArgumentError("invalid SPIFFE ID: cannot be empty");
  if (!absl::StartsWith(s, kScheme)) {
    return IdError(s, "scheme is missing or invalid (must be exactly \"spiffe://\")");
  }
  if (s.size() > kMaxIdBytes) return IdError(s, "SPIFFE ID is longer than 2048 bytes");
  absl::string_view rest = s.substr(kScheme.size());
  // A query or fragment ends the authority as well as the path; name it
  // rather than report its first character as a bad one.
  size_t end = rest.find_first_of("/?#");
  absl::string_view td = rest.substr(0, end);
  if (end != absl::string_view::npos && rest[end] == '?') {
    return IdError(s, "SPIFFE ID must not contain a query ('?')");
  }
  if (end != absl::string_view::npos && rest[end] == '#') {
    return IdError(s, "SPIFFE ID must not contain a fragment ('#')");
  }
  absl::string_view rule = TrustDomainRule(td);
  if (!rule.empty()) return IdError(s, rule);
  absl::string_view path = end == absl::string_view::npos ? "" : rest.substr(end);
  rule = PathRule(path);
  if (!rule.empty()) return IdError(s, rule);
  return SpiffeId(TrustDomain(std::string(td)), std::string(path));
}

absl::StatusOr<SpiffeId> SpiffeId::FromPath(const TrustDomain& td, absl::string_view path) {
  std::string id = absl::StrCat(kScheme, td.name(), path);
  absl::string_view rule = PathRule(path);
  if (!rule.empty()) return IdError(id, rule);
  if (id.size() > kMaxIdBytes) return IdError(id, "SPIFFE ID is longer than 2048 bytes");
  return SpiffeId(td, std::string(path));
}

std::string SpiffeId::ToString() const { return absl::StrCat(kScheme, trust_domain_.name(), path_); }

absl::Status ValidatePath(absl::string_view path) {
  absl::string_view rule = PathRule(path);
  if (rule.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("invalid SPIFFE ID path ", Quote(path), ": ", rule));
}

}  // namespace sigil::spiffe
