#pragma once

// X509SVIDResponse as `api fetch x509` and `api watch` show it: parsed and
// verified as SPIRE's CLI does before printing, printed in SPIRE's pretty
// format, and written to files as `-write` does.

#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "spiffe/crypto/certificate.h"
#include "workload.pb.h"

namespace sigil::agent::cli {

// One X509-SVID of a response.
struct ParsedX509Svid {
  std::string spiffe_id;
  std::string hint;
  std::vector<crypto::Certificate> chain;  // leaf first
  // The PKCS#8 DER key as received, checked to match the leaf. Key
  // material: written only to a 0600 file, never printed by pretty output.
  std::string key_pkcs8_der;
  // The X.509 authorities of the SVID's own trust domain.
  std::vector<crypto::Certificate> bundle;
};

struct ParsedX509Response {
  std::vector<ParsedX509Svid> svids;
  // Federated bundles by trust domain ID ("spiffe://example.org"), sorted.
  std::map<std::string, std::vector<crypto::Certificate>> federated_bundles;
};

// Parses every SVID and bundle, then verifies each SVID as SPIRE's CLI does:
// the SPIFFE ID must be valid, the chain must verify at `now` against the
// SVID's bundle, and (as go-spiffe's parser also requires) the leaf must
// carry that SPIFFE ID and the key must match the leaf. InvalidArgument with
// SPIRE's messages: "workload response contains no svids"; "failed to parse
// bundle for federated domain \"...\": ..."; "no certificates in bundle for
// federated domain \"...\""; "failed to parse svid entry N for spiffe id
// \"...\": no certificates found | <certificate error> | failed to parse
// private key: ... | failed to parse trust bundle: ... | no certificates in
// trust bundle"; "\"<id>\" SVID failed verification against bundle: ...".
absl::StatusOr<ParsedX509Response> ParseX509Response(const ::X509SVIDResponse& response,
                                                     absl::Time now);

// SPIRE's pretty format: "Received N svid(s) after <Go duration>", then for
// each SVID an empty line, "SPIFFE ID:\t\t<id>", the validity of the leaf,
// of each intermediate and of each CA of its bundle, then the federated
// bundles' CAs ("[spiffe://td] CA #1 Valid After:\t..."); a final empty
// line. "Hint:\t\t\t<hint>" follows the SPIFFE ID when the SVID has one.
void PrintX509Response(const ParsedX509Response& response, absl::Duration elapsed,
                       std::ostream& out);

// Writes, for SVID i: <dir>/svid.i.pem (chain, 0644), <dir>/svid.i.key
// (PKCS#8 "PRIVATE KEY" PEM, 0600), <dir>/bundle.i.pem (0644) and, for the
// j-th federated trust domain in sorted order, federated_bundle.i.j.pem
// (0644); each file is replaced atomically and announced on `out` as SPIRE
// does ("Writing SVID #0 to file /dir/svid.0.pem."). The directory must
// exist. Errors name the file (NotFound, PermissionDenied, ...).
absl::Status WriteX509Response(const ParsedX509Response& response, const std::string& dir,
                               std::ostream& out);

}  // namespace sigil::agent::cli
