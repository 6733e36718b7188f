#pragma once

// What sigil-server and sigil-agent share when they resolve their settings
// from a YAML file (common/yaml_proto.h) and command-line flags: reading the
// file, flag-over-file precedence, the checks both apply, and collecting
// every problem so that one error reports them all.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/message.h"

namespace sigil {

// Reads the YAML file at `path` into `msg` (MergeYamlIntoProto). The file's
// read error as ReadFile gives it (NotFound when it does not exist); for a
// file that does not fit the schema, InvalidArgument "config <path>:\n"
// followed by every problem, one per line.
absl::Status ReadYamlConfigFile(const std::string& path, google::protobuf::Message* msg);

// The problems found in one configuration, each naming its key
// ("server.bind_port: 70000 is not a port (0-65535)"), reported together.
// Not thread-safe.
class ConfigErrors {
 public:
  // Records "<key>: <reason>".
  void Add(absl::string_view key, absl::string_view reason);
  // Records "<key>: <message>" when `status` is not OK. Returns status.ok().
  bool Check(absl::string_view key, const absl::Status& status);

  // OK when nothing was recorded; otherwise InvalidArgument listing every
  // problem, one per line, in the order recorded.
  absl::Status ToStatus() const;

 private:
  std::vector<std::string> problems_;
};

// A command-line flag over the file: `flag` when it is non-empty, else
// `file_value` when that is, else `default_value`.
std::string FlagOrFile(const std::string& flag, const std::string& file_value,
                       const std::string& default_value = "");

// google.protobuf.Duration as an absl::Duration.
absl::Duration DurationFromProto(const google::protobuf::Duration& d);

// A log level both binaries accept: DEBUG, INFO, WARN or ERROR, all upper or
// all lower case. InvalidArgument `unknown level "<level>" (one of DEBUG,
// INFO, WARN, ERROR)` otherwise.
absl::Status ValidateLogLevel(absl::string_view level);

// A log format: "text" or "json". InvalidArgument `unknown format
// "<format>" (one of text, json)` otherwise.
absl::Status ValidateLogFormat(absl::string_view format);

// A path a Unix socket can be bound to: at most 107 bytes, the room in
// sockaddr_un. InvalidArgument "longer than a Unix socket path may be (107
// bytes): <path>" otherwise.
absl::Status ValidateSocketPath(absl::string_view path);

}  // namespace sigil
