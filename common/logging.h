#pragma once

// Process-wide logging setup on spdlog. Key material never goes through these
// loggers: callers log identities, serial numbers and fingerprints only.

#include <string>

#include "absl/status/status.h"

namespace sigil {

// Configures the default spdlog logger to write to stderr.
// `level`: DEBUG, INFO, WARN, ERROR (case-insensitive). `format`: text or json
// (one JSON object per line with time, level, logger and msg).
// InvalidArgument naming the bad value otherwise.
absl::Status InitLogging(const std::string& level, const std::string& format,
                         const std::string& component);

// Escapes `s` for inclusion inside a JSON string literal.
std::string JsonEscape(const std::string& s);

}  // namespace sigil
