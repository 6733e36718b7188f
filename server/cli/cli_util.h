// Small pieces shared by the sigil-server client commands: the conventions
// of SPIRE's CLI that only the server's commands need (pluralized counts,
// the entry printer) and conversions between command-line strings and
// spire.api.types values. The output format, protobuf JSON and Go's text
// forms are common/cli_output.h's, shared with sigil-agent.

#include <cstdint>
#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/cli_flags.h"
#include "common/cli_output.h"
#include "spire/api/types/entry.pb.h"
#include "spire/api/types/selector.pb.h"
#include "spire/api/types/spiffeid.pb.h"

namespace sigil::server::cli {

using ::sigil::cli::GoQuote;
using ::sigil::cli::GoTimeUtc;
using ::sigil::cli::GrpcCodeName;
using ::sigil::cli::OutputFormat;
using ::sigil::cli::ParseOutputFormat;
using ::sigil::cli::ProtoToJson;

// "<n> <singular>" when n == 1, else "<n> <plural>".
std::string Pluralize(int64_t n, absl::string_view singular, absl::string_view plural);

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
