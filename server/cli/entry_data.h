#pragma once

// The registration-entry file of `entry create -data` / `entry update -data`.
//
// SPIRE's format: {"entries": [ ... ]} where each entry is SPIRE's
// RegistrationEntry as Go's encoding/json writes it —
//   {"spiffe_id": "spiffe://example.org/web",
//    "parent_id": "spiffe://example.org/spire/agent/join_token/x",
//    "selectors": [{"type": "unix", "value": "uid:1000"}],
//    "x509_svid_ttl": 3600, "jwt_svid_ttl": 300,
//    "federates_with": ["spiffe://other.org"], "dns_names": ["web"],
//    "entry_id": "...", "admin": false, "downstream": false,
//    "entryExpiry": 0, "store_svid": false, "hint": "",
//    "revision_number": 0}
// Keys match case-insensitively (as Go's decoder does), null means unset,
// and an unknown key is an error (SPIRE silently ignores it, which hides
// typos such as the long-gone "ttl").
//
// An entry whose "spiffe_id" (or "spiffeId") is an object is read instead
// as protobuf JSON of spire.api.types.Entry — what `entry show -output
// json` prints — so that output can be fed back in.

#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "spire/api/types/entry.pb.h"

namespace sigil::server::cli {

// InvalidArgument naming the position and rule on any error ("entries[1]:
// invalid parent ID ...", "entries[0].selectors[2]: \"type\" must be a
// string", "malformed JSON: ..."). The list may be empty.
absl::StatusOr<std::vector<spire::api::types::Entry>> ParseEntryData(absl::string_view json);

}  // namespace sigil::server::cli
