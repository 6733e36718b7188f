#pragma once

// Validation of registration entries and of the identifiers they hold, as
// the Entry API applies it to BatchCreateEntry / BatchUpdateEntry (SPIRE's
// rules: pkg/server/api ProtoToRegistrationEntryWithMask and the datastore's
// entry checks). Every refusal is INVALID_ARGUMENT and its message starts
// with "invalid <field>: " naming the offending field (with its index for
// repeated fields, e.g. "invalid selectors[1]: ...").

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "spiffe/id.h"
#include "spire/api/types/entry.pb.h"
#include "spire/api/types/selector.pb.h"
#include "spire/api/types/spiffeid.pb.h"

namespace sigil::server {

// Longest hint SPIRE accepts.
inline constexpr size_t kMaxHintLength = 1024;
// Longest entry ID SPIRE accepts.
inline constexpr size_t kMaxEntryIdLength = 255;

// Reserved for SPIRE's own identities (agents, servers): "/spire" and below.
bool IsReservedPath(absl::string_view path);
// The agent namespace: "/spire/agent/..." .
bool IsAgentPath(absl::string_view path);

// A caller-chosen entry ID: 1..255 characters of [A-Za-z0-9._-].
absl::Status ValidateEntryId(absl::string_view id);

// A selector: non-empty type without ':', non-empty value.
absl::Status ValidateSelector(const spire::api::types::Selector& selector);

// A DNS SAN: at most 253 characters of dot-separated labels, each 1..63
// letters, digits and hyphens not starting or ending with a hyphen; an
// optional leading "*." wildcard label.
absl::Status ValidateDnsName(absl::string_view name);

// Validates the fields of `entry` selected by `mask` (nullptr: all) for the
// server of `td`, and returns the entry with its IDs and federates_with in
// canonical form (trust domain names). Fields outside the mask are returned
// unchanged. Rules:
//   id             empty, or ValidateEntryId
//   spiffe_id      present; a valid ID in `td`, with a path outside the
//                  reserved "/spire" namespace
//   parent_id      present; a valid ID in `td` with a non-empty path
//   selectors      at least one; each ValidateSelector; with store_svid, all
//                  of the same type
//   x509_svid_ttl, jwt_svid_ttl, expires_at   not negative
//   dns_names      each ValidateDnsName
//   federates_with each a trust domain (apitypes::ParseTrustDomain)
//   hint           at most kMaxHintLength characters
// revision_number and created_at are server-owned and not checked.
absl::StatusOr<spire::api::types::Entry> ValidateEntry(const spire::api::types::Entry& entry,
                                                       const spiffe::TrustDomain& td,
                                                       const spire::api::types::EntryMask* mask);

}  // namespace sigil::server
