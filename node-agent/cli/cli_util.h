#pragma once

// Small pieces shared by the sigil-agent client commands: the SPIFFE
// Workload Endpoint address (SPIFFE_ENDPOINT_SOCKET) and the default socket.
// The output format, protobuf JSON as SPIRE prints it and Go's text forms
// are common/cli_output.h's, shared with sigil-server.

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/cli_flags.h"
#include "common/cli_output.h"

namespace sigil::agent::cli {

using ::sigil::cli::GoQuote;
using ::sigil::cli::GoTimeUtc;
using ::sigil::cli::GrpcCodeName;
using ::sigil::cli::OutputFormat;
using ::sigil::cli::ParseOutputFormat;
using ::sigil::cli::ProtosToJson;
using ::sigil::cli::ProtoToJson;

// Where sigil-agent serves the Workload API by default (SPIRE's is
// /tmp/spire-agent/public/api.sock).
inline constexpr char kDefaultSocketPath[] = "/tmp/sigil-agent/public/api.sock";

// The SPIFFE Workload Endpoint standard's variable (§4 "Locating the
// endpoint").
inline constexpr char kEndpointSocketEnv[] = "SPIFFE_ENDPOINT_SOCKET";

// Parses a Workload Endpoint address as go-spiffe does for the unix scheme
// ("unix:///run/agent.sock", "unix:/run/agent.sock"; the scheme is
// case-insensitive, %XX escapes in the path are decoded) and returns the
// socket path. InvalidArgument with go-spiffe's messages: no or another
// scheme ("... must have a tcp:// or unix:// scheme"), "tcp://" (this CLI
// only speaks to Unix sockets), an opaque URI ("unix:relative.sock"), user
// info, a host (gRPC refuses one too), no path, query values, a fragment, a
// malformed escape.
absl::StatusOr<std::string> ParseEndpointSocket(absl::string_view address);

}  // namespace sigil::agent::cli
