#pragma once

// gRPC core logs through its own printf-style logger (gpr_log) to stderr, in a
// format unlike Sigil's. This sends those lines through spdlog instead, so
// they share the configured format and level.

namespace sigil {

// Installs the bridge; call once after InitLogging. gRPC's errors become
// spdlog warnings, its info/debug lines spdlog debug. One known-benign TLS
// line is demoted to debug: a SPIFFE server certificate carries a URI SAN
// only, so gRPC reports "No match found for server name" for every client
// that sends SNI.
void RouteGrpcLogsToSpdlog();

}  // namespace sigil
