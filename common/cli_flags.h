#pragma once

// Go-style command-line flags on top of CLI11, for the sigil-server and
// sigil-agent CLIs. SPIRE's CLIs use Go's "flag" package, and SPIRE
// tutorials type flags its way, so Sigil accepts exactly that syntax:
//
//   -name value   -name=value   --name value   --name=value
//   -boolflag     -boolflag=false              (never "-boolflag false")
//
// Flag names are case-sensitive and may be longer than one letter even with
// a single dash ("-spiffeID"). A non-boolean flag always takes the next
// argument as its value, even one starting with "-" ("-ttl -5"). Parsing
// stops at the first argument that is not a flag ("-" alone counts as one)
// or right after a "--" terminator; what follows is left in args(). "-h",
// "-help", "--h" and "--help" request usage unless a flag of that name is
// defined. Scalar flags given twice keep the last value.
//
// NormalizeGoArgs rewrites such an argument list into CLI11's canonical form
// ("--name=value"), and FlagSet parses it with a CLI11 App whose option
// callbacks convert values as Go's flag package does.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace sigil::cli {

// Go's %q: the string in double quotes with \", \\, \n, \t (and the other
// C escapes) and \xNN for remaining control bytes; other bytes (UTF-8) as is.
std::string GoQuote(absl::string_view s);

// Go's strconv.ParseBool: 1 t T TRUE true True / 0 f F FALSE false False.
// InvalidArgument ("parse error") otherwise.
absl::StatusOr<bool> ParseGoBool(absl::string_view s);

// Go's strconv.ParseInt(s, 0, 64): optional sign, then decimal, "0x" hex,
// "0o" or leading-"0" octal, or "0b" binary, with "_" allowed between
// digits. InvalidArgument: "parse error" when malformed, "value out of
// range" beyond int64.
absl::StatusOr<int64_t> ParseGoInt(absl::string_view s);

// Go's time.ParseDuration: "0", or a signed sequence of decimal numbers with
// optional fractions, each followed by a unit among ns, us (µs, μs), ms, s,
// m, h ("1h30m", "1.5s", "-2m"). InvalidArgument naming the problem
// ("invalid duration", "missing unit in duration", "unknown unit \"d\" in
// duration") and quoting the input.
absl::StatusOr<absl::Duration> ParseGoDuration(absl::string_view s);

// Formats a duration as Go's time.Duration.String() does ("1h0m0s",
// "1m30s", "1.5s", "500ms", "0s").
std::string FormatGoDuration(absl::Duration d);

// The kind of a flag as far as Go's syntax is concerned: only boolean flags
// may be given without a value.
enum class FlagArity { kBoolean, kValue };

// The outcome of NormalizeGoArgs.
struct NormalizedArgs {
  // CLI11 tokens for every flag occurrence, in order: "--name=value", or
  // "--name" followed by "" for an empty value. Boolean flags given without
  // a value become "--name=true".
  std::vector<std::string> tokens;
  // Arguments after the flags (after "--", or from the first non-flag on).
  std::vector<std::string> positional;
  // "-h"/"-help" was given for a name that is not defined; parsing stopped
  // there.
  bool help_requested = false;
};

// Rewrites Go-style arguments into CLI11's canonical form. `lookup` returns
// false for a name that is not defined, else true with the flag's arity.
// InvalidArgument with Go's messages: "bad flag syntax: ---x",
// "flag provided but not defined: -name", "flag needs an argument: -name".
absl::StatusOr<NormalizedArgs> NormalizeGoArgs(
    const std::vector<std::string>& args,
    const std::function<bool(const std::string& name, FlagArity* arity)>& lookup);

// A set of Go-style flags for one command. Register flags, then Parse once.
// Targets must outlive Parse; defaults are stored into them at registration.
// Not thread-safe.
class FlagSet {
 public:
  // `command_name` appears in the usage text ("Usage of entry create:").
  explicit FlagSet(std::string command_name);
  ~FlagSet();
  FlagSet(const FlagSet&) = delete;
  FlagSet& operator=(const FlagSet&) = delete;

  // Registration. `name` is the bare flag name ("spiffeID"); registering a
  // name twice is a programming error (it aborts).
  void String(const std::string& name, std::string* target, const std::string& default_value,
              const std::string& usage);
  void Int(const std::string& name, int64_t* target, int64_t default_value,
           const std::string& usage);
  void Bool(const std::string& name, bool* target, bool default_value, const std::string& usage);
  void Duration(const std::string& name, absl::Duration* target, absl::Duration default_value,
                const std::string& usage);
  // A repeatable flag: every occurrence appends its value.
  void StringList(const std::string& name, std::vector<std::string>* target,
                  const std::string& usage);
  // A flag whose value `set` validates and stores (Go's flag.Func); its
  // error message becomes the reason in "invalid value ... for flag -name:".
  // `default_text` is shown in usage when non-empty.
  void Func(const std::string& name, const std::string& usage, const std::string& default_text,
            std::function<absl::Status(const std::string& value)> set);

  // Parses `args` (without the command words). InvalidArgument with Go's
  // message on the first bad flag: unknown flag, missing value, or a value
  // that does not convert ("invalid value \"abc\" for flag -ttl: parse
  // error", "invalid boolean value \"maybe\" for -admin: parse error").
  // A help request stops parsing and returns OK with help_requested() set.
  absl::Status Parse(const std::vector<std::string>& args);

  bool help_requested() const { return help_requested_; }
  // Whether `name` was given on the command line (by the last Parse).
  bool IsSet(const std::string& name) const;
  // Arguments left after the flags.
  const std::vector<std::string>& args() const { return positional_; }
  // Go's usage text: "Usage of <command>:" then every flag, sorted by name,
  // with its type, usage and non-zero default.
  std::string Usage() const;

 private:
  struct Flag;
  void Add(std::unique_ptr<Flag> flag);

  std::string command_name_;
  std::map<std::string, std::unique_ptr<Flag>> flags_;
  std::vector<std::string> positional_;
  bool help_requested_ = false;
};

}  // namespace sigil::cli
