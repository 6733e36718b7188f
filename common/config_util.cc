#include "common/config_util.h"

#include <sys/un.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/file_util.h"
#include "common/yaml_proto.h"

namespace sigil {

absl::Status ReadYamlConfigFile(const std::string& path, google::protobuf::Message* msg) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  absl::Status merged = MergeYamlIntoProto(*text, msg);
  if (!merged.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("config ", path, ":\n", merged.message()));
  }
  return absl::OkStatus();
}

void ConfigErrors::Add(absl::string_view key, absl::string_view reason) {
  problems_.push_back(absl::StrCat(key, ": ", reason));
}

bool ConfigErrors::Check(absl::string_view key, const absl::Status& status) {
  if (status.ok()) return true;
  Add(key, status.message());
  return false;
}

absl::Status ConfigErrors::ToStatus() const {
  if (problems_.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(problems_, "\n"));
}

std::string FlagOrFile(const std::string& flag, const std::string& file_value,
                       const std::string& default_value) {
  if (!flag.empty()) return flag;
  if (!file_value.empty()) return file_value;
  return default_value;
}

absl::Duration DurationFromProto(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

absl::Status ValidateLogLevel(absl::string_view level) {
  for (absl::string_view known :
       {"DEBUG", "INFO", "WARN", "ERROR", "debug", "info", "warn", "error"}) {
    if (level == known) return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown level \"", level, "\" (one of DEBUG, INFO, WARN, ERROR)"));
}

absl::Status ValidateLogFormat(absl::string_view format) {
  if (format == "text" || format == "json") return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("unknown format \"", format, "\" (one of text, json)"));
}

absl::Status ValidateSocketPath(absl::string_view path) {
  // sun_path holds the path and its terminating NUL.
  if (path.size() < sizeof(sockaddr_un{}.sun_path)) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("longer than a Unix socket path may be (",
                                                 sizeof(sockaddr_un{}.sun_path) - 1,
                                                 " bytes): ", path));
}

}  // namespace sigil
