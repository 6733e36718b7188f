#include "server/store/entry_validation.h"

#include <set>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "apitypes/convert.h"

namespace sigil::server {
namespace {

namespace types = ::spire::api::types;

absl::Status FieldError(absl::string_view field, absl::string_view reason) {
  return absl::InvalidArgumentError(absl::StrCat("invalid ", field, ": ", reason));
}

bool IsEntryIdChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
}

bool IsLdhLabel(absl::string_view label) {
  if (label.empty() || label.size() > 63) return false;
  if (label.front() == '-' || label.back() == '-') return false;
  for (char c : label) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
  }
  return true;
}

// Parses `id` for `field` and checks that it belongs to `td` with a path.
absl::StatusOr<spiffe::SpiffeId> MemberId(absl::string_view field, bool present,
                                          const types::SPIFFEID& id,
                                          const spiffe::TrustDomain& td) {
  if (!present) return FieldError(field, "missing");
  absl::StatusOr<spiffe::SpiffeId> parsed = apitypes::SpiffeIdFromProto(id);
  if (!parsed.ok()) return FieldError(field, parsed.status().message());
  if (!parsed->MemberOf(td)) {
    return FieldError(field, absl::StrCat("\"", parsed->ToString(),
                                          "\" is not a member of trust domain \"", td.name(),
                                          "\""));
  }
  if (parsed->path().empty()) {
    return FieldError(field, absl::StrCat("\"", parsed->ToString(), "\" has an empty path"));
  }
  return parsed;
}

}  // namespace

bool IsReservedPath(absl::string_view path) {
  return path == "/spire" || absl::StartsWith(path, "/spire/");
}

bool IsAgentPath(absl::string_view path) { return absl::StartsWith(path, "/spire/agent/"); }

absl::Status ValidateEntryId(absl::string_view id) {
  if (id.empty()) return absl::InvalidArgumentError("entry ID is empty");
  if (id.size() > kMaxEntryIdLength) {
    return absl::InvalidArgumentError(absl::StrCat("entry ID is ", id.size(),
                                                   " characters; the limit is ",
                                                   kMaxEntryIdLength));
  }
  for (char c : id) {
    if (!IsEntryIdChar(c)) {
      return absl::InvalidArgumentError(
          "entry ID contains a character other than letters, digits, '-', '.' and '_'");
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateSelector(const types::Selector& selector) {
  if (selector.type().empty()) return absl::InvalidArgumentError("missing selector type");
  if (absl::StrContains(selector.type(), ':')) {
    return absl::InvalidArgumentError(
        absl::StrCat("selector type \"", selector.type(), "\" contains ':'"));
  }
  if (selector.value().empty()) return absl::InvalidArgumentError("missing selector value");
  return absl::OkStatus();
}

absl::Status ValidateDnsName(absl::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError("DNS name is empty");
  if (name.size() > 253) {
    return absl::InvalidArgumentError(
        absl::StrCat("DNS name \"", name, "\" is longer than 253 characters"));
  }
  absl::string_view rest = name;
  if (absl::StartsWith(rest, "*.")) rest.remove_prefix(2);
  for (absl::string_view label : absl::StrSplit(rest, '.')) {
    if (!IsLdhLabel(label)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "DNS name \"", name,
          "\" is not dot-separated labels of 1-63 letters, digits and inner hyphens"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<types::Entry> ValidateEntry(const types::Entry& entry, const spiffe::TrustDomain& td,
                                           const types::EntryMask* mask) {
  auto selected = [mask](bool (types::EntryMask::*field)() const) {
    return mask == nullptr || (mask->*field)();
  };
  types::Entry out = entry;

  if (!entry.id().empty()) {
    absl::Status s = ValidateEntryId(entry.id());
    if (!s.ok()) return FieldError("id", s.message());
  }

  if (selected(&types::EntryMask::spiffe_id)) {
    absl::StatusOr<spiffe::SpiffeId> id =
        MemberId("spiffe_id", entry.has_spiffe_id(), entry.spiffe_id(), td);
    if (!id.ok()) return id.status();
    if (IsReservedPath(id->path())) {
      return FieldError("spiffe_id", absl::StrCat("\"", id->ToString(),
                                                  "\" is in the reserved namespace \"/spire\""));
    }
    *out.mutable_spiffe_id() = apitypes::SpiffeIdToProto(*id);
  }

  if (selected(&types::EntryMask::parent_id)) {
    absl::StatusOr<spiffe::SpiffeId> id =
        MemberId("parent_id", entry.has_parent_id(), entry.parent_id(), td);
    if (!id.ok()) return id.status();
    *out.mutable_parent_id() = apitypes::SpiffeIdToProto(*id);
  }

  if (selected(&types::EntryMask::selectors)) {
    if (entry.selectors().empty()) {
      return FieldError("selectors", "at least one selector is required");
    }
    for (int i = 0; i < entry.selectors_size(); ++i) {
      absl::Status s = ValidateSelector(entry.selectors(i));
      if (!s.ok()) return FieldError(absl::StrCat("selectors[", i, "]"), s.message());
    }
  }

  // SPIRE keeps selectors of SVIDs meant for an SVIDStore plugin to one
  // platform, so the plugin that stores them is unambiguous.
  bool store_svid = selected(&types::EntryMask::store_svid) && entry.store_svid();
  if (store_svid && selected(&types::EntryMask::selectors)) {
    for (const types::Selector& s : entry.selectors()) {
      if (s.type() != entry.selectors(0).type()) {
        return FieldError("selectors", "selector types must all be the same when store_svid is set");
      }
    }
  }

  if (selected(&types::EntryMask::x509_svid_ttl) && entry.x509_svid_ttl() < 0) {
    return FieldError("x509_svid_ttl", absl::StrCat(entry.x509_svid_ttl(), " is negative"));
  }
  if (selected(&types::EntryMask::jwt_svid_ttl) && entry.jwt_svid_ttl() < 0) {
    return FieldError("jwt_svid_ttl", absl::StrCat(entry.jwt_svid_ttl(), " is negative"));
  }
  if (selected(&types::EntryMask::expires_at) && entry.expires_at() < 0) {
    return FieldError("expires_at", absl::StrCat(entry.expires_at(), " is negative"));
  }

  if (selected(&types::EntryMask::dns_names)) {
    for (int i = 0; i < entry.dns_names_size(); ++i) {
      absl::Status s = ValidateDnsName(entry.dns_names(i));
      if (!s.ok()) return FieldError(absl::StrCat("dns_names[", i, "]"), s.message());
    }
  }

  if (selected(&types::EntryMask::federates_with)) {
    out.clear_federates_with();
    std::set<std::string> seen;
    for (int i = 0; i < entry.federates_with_size(); ++i) {
      absl::StatusOr<spiffe::TrustDomain> ftd = apitypes::ParseTrustDomain(entry.federates_with(i));
      if (!ftd.ok()) {
        return FieldError(absl::StrCat("federates_with[", i, "]"), ftd.status().message());
      }
      if (seen.insert(ftd->name()).second) out.add_federates_with(ftd->name());
    }
  }

  if (selected(&types::EntryMask::hint) && entry.hint().size() > kMaxHintLength) {
    return FieldError("hint", absl::StrCat("is ", entry.hint().size(),
                                           " characters; the limit is ", kMaxHintLength));
  }
  return out;
}

}  // namespace sigil::server
