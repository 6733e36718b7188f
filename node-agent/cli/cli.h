#pragma once

// sigil-agent's client commands: everything but `run`. They mirror
// spire-agent's subcommands, flags and output (so SPIRE tutorials carry over)
// and talk to the agent's SPIFFE Workload API on its Unix socket — the
// socket every workload uses, so these commands see exactly what a workload
// running as the same user would see.
//
// Commands:
//   healthcheck [-shallow] [-verbose]          grpc.health.v1 Check
//   api fetch x509 [-write DIR] [-silent]      FetchX509SVID (first answer)
//   api fetch                                  same as `api fetch x509`
//   api fetch jwt -audience A[,B] [-spiffeID]  FetchJWTBundles + FetchJWTSVID
//   api validate jwt -audience A -svid TOKEN   ValidateJWTSVID
//   api watch                                  FetchX509SVID stream, every
//                                              update until SIGINT/SIGTERM
//
// Every command takes -socketPath (default /tmp/sigil-agent/public/api.sock;
// when it is not given, SPIFFE_ENDPOINT_SOCKET — "unix:///path" or
// "unix:/path" — is used if set) and -output pretty|json (json prints the
// Workload API responses as protobuf JSON). `api fetch` and `api validate`
// also take -timeout (Go duration, default 5s, 0 = none). Flags use Go's
// syntax (common/cli_flags.h).

#include <ostream>
#include <string>
#include <vector>

namespace sigil::agent::cli {

// Runs the client command named by the leading words of `args` (which
// exclude argv[0]), e.g. {"api", "fetch", "x509", "-write", "/tmp/x"}.
// Output goes to `out`; errors, usage and help go to `err`. `api watch`
// runs until the process receives SIGINT or SIGTERM (handled only while it
// runs). Returns the process exit code: 0 on success, when help was asked
// for, or when a watch was interrupted; 1 on any error (unknown command, bad
// flag, unreachable agent, failed RPC, invalid response, unwritable file).
int RunAgentClientCommand(const std::vector<std::string>& args, std::ostream& out,
                          std::ostream& err);

// True when `first_arg` is the first word of a client command
// ("healthcheck" or "api"), i.e. main() should hand the command line here.
bool IsAgentClientCommand(const std::string& first_arg);

}  // namespace sigil::agent::cli
