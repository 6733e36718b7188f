#pragma once

// The framework shared by the client commands (internal to server/cli/):
// every command registers its flags on a Go-style FlagSet, the runner adds
// -socketPath and -output, parses, and calls Run with a context holding the
// streams, the output format and the API client — SPIRE's util.Adapter.

#include <functional>
#include <istream>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/cli_flags.h"
#include "common/clock.h"
#include "google/protobuf/message.h"
#include "server/cli/cli_util.h"
#include "server/cli/client.h"

namespace sigil::server::cli {

using FlagSet = ::sigil::cli::FlagSet;

// What a command reads and writes. RunClientCommand uses the process's
// standard streams and the real clock; tests pass their own.
struct CommandEnv {
  std::istream* in = nullptr;
  std::ostream* out = nullptr;
  std::ostream* err = nullptr;
  const Clock* clock = nullptr;
};

class CommandContext {
 public:
  CommandContext(const CommandEnv& env, OutputFormat format, ServerClient* client)
      : env_(env), format_(format), client_(client) {}

  std::istream& in() { return *env_.in; }
  std::ostream& out() { return *env_.out; }
  std::ostream& err() { return *env_.err; }
  const Clock& clock() const { return *env_.clock; }
  OutputFormat format() const { return format_; }
  bool json() const { return format_ == OutputFormat::kJson; }
  ServerClient& client() { return *client_; }

  // Writes `message` to out() as one line of protobuf JSON.
  void PrintJson(const google::protobuf::Message& message) {
    out() << ProtoToJson(message) << "\n";
  }

 private:
  CommandEnv env_;
  OutputFormat format_;
  ServerClient* client_;
};

// Every client command implements common/cli_output.h's interface.
using Command = ::sigil::cli::Command<CommandContext>;

struct CommandSpec {
  // The command words, e.g. "entry create" or "localauthority x509 show".
  std::string name;
  std::string synopsis;
  std::function<std::unique_ptr<Command>()> make;
  // Printed before a failed command's message.
  std::string error_prefix = "Error: ";
};

// Runs one command line (without argv[0]) against `env`; returns the exit
// code: 0 on success or help, 1 on any error (usage, validation, RPC).
int RunCommandLine(const std::vector<std::string>& args, const CommandEnv& env);

// Fetches every page of a paged List RPC: calls `(stub.*list)` with `req`,
// its page_token advanced to each page's next_page_token until one comes
// back empty, and hands each page to `take(Response&)`. A failed call is
// returned as client.RpcError(status, context); a page token that comes back
// unchanged (the loop would never end) is Internal "<context>: the server
// repeated a page token" (without "<context>: " when `context` is empty).
template <typename Stub, typename Request, typename Response, typename Take>
absl::Status ListAllPages(ServerClient& client, Stub& stub,
                          grpc::Status (Stub::*list)(grpc::ClientContext*, const Request&,
                                                     Response*),
                          Request req, absl::string_view context, const Take& take) {
  while (true) {
    Response page;
    grpc::ClientContext call;
    grpc::Status st = (stub.*list)(&call, req, &page);
    if (!st.ok()) return client.RpcError(st, context);
    take(page);
    if (page.next_page_token().empty()) return absl::OkStatus();
    if (page.next_page_token() == req.page_token()) {
      return absl::InternalError(
          absl::StrCat(context, context.empty() ? "" : ": ", "the server repeated a page token"));
    }
    req.set_page_token(page.next_page_token());
  }
}

// Reads `path`, or all of `in` when `path` is "-" or empty. InvalidArgument
// naming the path when it cannot be read.
absl::StatusOr<std::string> ReadInput(const std::string& path, std::istream& in);

// Factories (one per command; defined in the *_commands.cc files).
std::unique_ptr<Command> NewTokenGenerateCommand();
std::unique_ptr<Command> NewEntryCreateCommand();
std::unique_ptr<Command> NewEntryUpdateCommand();
std::unique_ptr<Command> NewEntryDeleteCommand();
std::unique_ptr<Command> NewEntryShowCommand();
std::unique_ptr<Command> NewEntryCountCommand();
std::unique_ptr<Command> NewAgentListCommand();
std::unique_ptr<Command> NewAgentShowCommand();
std::unique_ptr<Command> NewAgentCountCommand();
std::unique_ptr<Command> NewAgentEvictCommand();
std::unique_ptr<Command> NewAgentBanCommand();
std::unique_ptr<Command> NewBundleShowCommand();
std::unique_ptr<Command> NewBundleListCommand();
std::unique_ptr<Command> NewBundleSetCommand();
std::unique_ptr<Command> NewBundleDeleteCommand();
std::unique_ptr<Command> NewBundleCountCommand();
std::unique_ptr<Command> NewX509MintCommand();
std::unique_ptr<Command> NewJwtMintCommand();
// kind: "x509" or "jwt"; action: "show", "prepare", "activate", "taint",
// "revoke".
std::unique_ptr<Command> NewLocalAuthorityCommand(const std::string& kind,
                                                  const std::string& action);

}  // namespace sigil::server::cli
