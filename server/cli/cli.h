#pragma once

// sigil-server's client commands: everything but `run` and `validate`.
// They mirror spire-server's subcommands, flags and output (so SPIRE
// tutorials carry over) and talk to the server's admin API — SPIRE's server
// API — over its Unix socket (-socketPath, default
// /tmp/sigil-server/private/api.sock). Flags use Go's syntax
// (common/cli_flags.h). Every command takes -output pretty|json; json
// prints the API response as protobuf JSON.
//
// Commands: healthcheck; token generate; entry create|update|delete|show|
// count; agent list|show|count|evict|ban; bundle show|list|set|delete|count;
// x509 mint; jwt mint; localauthority x509|jwt show|prepare|activate|taint|
// revoke.

#include <iosfwd>
#include <string>
#include <vector>

namespace sigil::server::cli {

// Runs the client command named by the leading words of `args` (which
// exclude argv[0]), e.g. {"entry", "create", "-spiffeID", ...}. Output goes
// to `out`, errors and usage to `err`; commands that read input (`entry
// create -data -`, `bundle set` without -path) read `in`. Returns the
// process exit code: 0 on success or when help was asked for, 1 on any
// error (unknown command, bad flag, failed validation, failed RPC, failed
// batch item).
int RunClientCommand(const std::vector<std::string>& args, std::istream& in, std::ostream& out,
                     std::ostream& err);
// Same, reading std::cin.
int RunClientCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

// True when `name` is the first word of a client command ("entry",
// "healthcheck", ...), i.e. main() should hand the command line here.
bool IsClientCommand(const std::string& name);

}  // namespace sigil::server::cli
