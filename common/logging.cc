#include "common/logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace sigil {
namespace {

class JsonMessageFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    std::string escaped = JsonEscape(std::string(msg.payload.data(), msg.payload.size()));
    dest.append(escaped.data(), escaped.data() + escaped.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonMessageFlag>();
  }
};

}  // namespace

std::string JsonEscape(const std::string& s) {
  std::string out;
  out.reserve(s.size() + 8);
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

absl::Status InitLogging(const std::string& level, const std::string& format,
                         const std::string& component) {
  std::string lvl = absl::AsciiStrToLower(level);
  spdlog::level::level_enum spd_level;
  if (lvl == "debug") {
    spd_level = spdlog::level::debug;
  } else if (lvl == "info" || lvl.empty()) {
    spd_level = spdlog::level::info;
  } else if (lvl == "warn" || lvl == "warning") {
    spd_level = spdlog::level::warn;
  } else if (lvl == "error") {
    spd_level = spdlog::level::err;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("log_level: unknown level \"", level, "\" (one of DEBUG, INFO, WARN, ERROR)"));
  }
  std::string fmt = absl::AsciiStrToLower(format);
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  if (fmt == "json") {
    formatter->add_flag<JsonMessageFlag>('*').set_pattern(
        absl::StrCat(R"({"time":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","logger":")", JsonEscape(component),
                     R"(","msg":"%*"})"));
  } else if (fmt == "text" || fmt.empty()) {
    formatter->set_pattern(absl::StrCat("%Y-%m-%dT%H:%M:%S.%e%z %^%-5l%$ [", component, "] %v"));
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("log_format: unknown format \"", format, "\" (one of text, json)"));
  }
  auto logger = std::make_shared<spdlog::logger>(component, std::make_shared<spdlog::sinks::stderr_sink_mt>());
  logger->set_formatter(std::move(formatter));
  logger->set_level(spd_level);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
  return absl::OkStatus();
}

}  // namespace sigil
