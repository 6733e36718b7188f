#pragma once

// Small pieces shared by the sigil-server client commands: output format,
// the textual conventions of SPIRE's CLI (Go's time and %q formats, gRPC
// code names, pluralized counts), and conversions between command-line
// strings and spire.api.types values.

#include <cstdint>
#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/cli_flags.h"
#include "google/protobuf/message.h"
#include "spire/api/types/entry.pb.h"
#include "spire/api/types/selector.pb.h"
#include "spire/api/types/spiffeid.pb.h"

namespace sigil::server::cli {

// -output: "pretty" (SPIRE's human format, the default) or "json" (the API
// response as protobuf JSON).
enum class OutputFormat { kPretty, kJson };

// Case-insensitive "pretty", "prettyprint" or "json", as SPIRE accepts.
// InvalidArgument ("unknown format option: \"xml\"") otherwise.
absl::StatusOr<OutputFormat> ParseOutputFormat(absl::string_view s);

// Protobuf JSON on one line, as SPIRE's -output json prints it: proto field
// names, fields at their default values included.
std::string ProtoToJson(const google::protobuf::Message& message);

// Go's %q quoting of a string.
using ::sigil::cli::GoQuote;

// Unix seconds in Go's time.Time.String() form for UTC times:
// "2026-01-01 00:00:00 +0000 UTC".
std::string GoTimeUtc(int64_t unix_seconds);

// gRPC status code names as Go's codes.Code prints them ("NotFound",
// "AlreadyExists", ...; "Code(42)" for unknown values).
std::string GrpcCodeName(int code);

// "<n> <singular>" when n == 1, else "<n> <plural>".
std::string Pluralize(int64_t n, absl::string_view singular, absl::string_view plural);

// "spiffe://<trust_domain><path>"; "" when both parts are empty.
std::string IdToString(const spire::api::types::SPIFFEID& id);

// Parses and validates a SPIFFE ID given on the command line.
// InvalidArgument: "<what> \"<value>\" is not a valid SPIFFE ID: <reason>".
absl::StatusOr<spire::api::types::SPIFFEID> ParseSpiffeIdArg(absl::string_view what,
                                                             absl::string_view value);

// Accepts a trust domain name ("example.org") or its SPIFFE ID
// ("spiffe://example.org") and returns the name. InvalidArgument for an
// invalid name or an ID with a path.
absl::StatusOr<std::string> ParseTrustDomainArg(absl::string_view value);

// "type:value"; everything after the first ':' is the value
// ("unix:uid:1000" is type "unix", value "uid:1000"). InvalidArgument
// ("selector \"x\" must be formatted as type:value") without a ':'.
absl::StatusOr<spire::api::types::Selector> ParseSelectorArg(absl::string_view s);

// Writes one entry in SPIRE's pretty format, followed by an empty line.
void PrintEntry(const spire::api::types::Entry& entry, std::ostream& out);

}  // namespace sigil::server::cli
