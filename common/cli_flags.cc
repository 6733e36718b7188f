#include "common/cli_flags.h"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>
#include <limits>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"

namespace sigil::cli {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

int DigitValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = absl::ascii_tolower(c);
  if (c >= 'a' && c <= 'z') return c - 'a' + 10;
  return 99;
}

// Appends v / 10^prec to `out` with the fraction's trailing zeros (and a
// bare '.') dropped; returns v / 10^prec truncated.
uint64_t AppendFraction(std::string* out, uint64_t v, int prec) {
  std::string digits;
  bool print = false;
  for (int i = 0; i < prec; ++i) {
    int digit = static_cast<int>(v % 10);
    print = print || digit != 0;
    if (print) digits.insert(digits.begin(), static_cast<char>('0' + digit));
    v /= 10;
  }
  if (print) *out = "." + digits + *out;
  return v;
}

}  // namespace

std::string GoQuote(absl::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\a': out += "\\a"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\v': out += "\\v"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += absl::StrFormat("\\x%02x", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += "\"";
  return out;
}

absl::StatusOr<bool> ParseGoBool(absl::string_view s) {
  if (s == "1" || s == "t" || s == "T" || s == "TRUE" || s == "true" || s == "True") return true;
  if (s == "0" || s == "f" || s == "F" || s == "FALSE" || s == "false" || s == "False") {
    return false;
  }
  return absl::InvalidArgumentError("parse error");
}

absl::StatusOr<int64_t> ParseGoInt(absl::string_view s) {
  const absl::Status parse_error = absl::InvalidArgumentError("parse error");
  if (s.empty()) return parse_error;
  bool negative = false;
  if (s[0] == '+' || s[0] == '-') {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s.empty()) return parse_error;
  int base = 10;
  // Whether the character before the digits is a digit-like base prefix, so
  // that "0x_1f" accepts its underscore.
  bool after_prefix = false;
  if (s[0] == '0') {
    char p = s.size() >= 3 ? absl::ascii_tolower(s[1]) : '\0';
    if (p == 'b' || p == 'o' || p == 'x') {
      base = p == 'b' ? 2 : (p == 'o' ? 8 : 16);
      s.remove_prefix(2);
    } else {
      base = 8;
      s.remove_prefix(1);
    }
    after_prefix = true;
  }
  uint64_t value = 0;
  const uint64_t limit = negative ? uint64_t{1} << 63 : (uint64_t{1} << 63) - 1;
  bool out_of_range = false;
  bool previous_is_digit = after_prefix;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '_') {
      bool next_is_digit = i + 1 < s.size() && DigitValue(s[i + 1]) < base;
      if (!previous_is_digit || !next_is_digit) return parse_error;
      previous_is_digit = false;
      continue;
    }
    int d = DigitValue(c);
    if (d >= base) return parse_error;
    previous_is_digit = true;
    if (value > (limit - static_cast<uint64_t>(d)) / static_cast<uint64_t>(base)) {
      out_of_range = true;
      continue;
    }
    value = value * static_cast<uint64_t>(base) + static_cast<uint64_t>(d);
  }
  if (out_of_range) return absl::InvalidArgumentError("value out of range");
  if (negative) {
    return value == (uint64_t{1} << 63) ? std::numeric_limits<int64_t>::min()
                                        : -static_cast<int64_t>(value);
  }
  return static_cast<int64_t>(value);
}

absl::StatusOr<absl::Duration> ParseGoDuration(absl::string_view s) {
  const std::string quoted = GoQuote(s);
  const absl::Status invalid = absl::InvalidArgumentError("invalid duration " + quoted);
  bool negative = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s == "0") return absl::ZeroDuration();
  if (s.empty()) return invalid;
  absl::Duration total = absl::ZeroDuration();
  while (!s.empty()) {
    size_t i = 0;
    uint64_t whole = 0;
    bool overflow = false;
    while (i < s.size() && IsDigit(s[i])) {
      uint64_t d = static_cast<uint64_t>(s[i] - '0');
      if (whole > (std::numeric_limits<uint64_t>::max() - d) / 10) overflow = true;
      whole = whole * 10 + d;
      ++i;
    }
    bool has_whole = i > 0;
    double fraction = 0;
    bool has_fraction = false;
    if (i < s.size() && s[i] == '.') {
      ++i;
      double scale = 0.1;
      while (i < s.size() && IsDigit(s[i])) {
        fraction += (s[i] - '0') * scale;
        scale /= 10;
        has_fraction = true;
        ++i;
      }
    }
    if ((!has_whole && !has_fraction) || overflow) return invalid;
    size_t unit_start = i;
    while (i < s.size() && s[i] != '.' && !IsDigit(s[i])) ++i;
    if (i == unit_start) {
      return absl::InvalidArgumentError("missing unit in duration " + quoted);
    }
    absl::string_view unit_name = s.substr(unit_start, i - unit_start);
    absl::Duration unit;
    if (unit_name == "ns") {
      unit = absl::Nanoseconds(1);
    } else if (unit_name == "us" || unit_name == "\xc2\xb5s" || unit_name == "\xce\xbcs") {
      unit = absl::Microseconds(1);
    } else if (unit_name == "ms") {
      unit = absl::Milliseconds(1);
    } else if (unit_name == "s") {
      unit = absl::Seconds(1);
    } else if (unit_name == "m") {
      unit = absl::Minutes(1);
    } else if (unit_name == "h") {
      unit = absl::Hours(1);
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown unit ", GoQuote(unit_name), " in duration ", quoted));
    }
    if (whole > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return invalid;
    total += unit * static_cast<int64_t>(whole) + unit * fraction;
    // Go's Duration is int64 nanoseconds (about 292 years).
    if (total > absl::Nanoseconds(std::numeric_limits<int64_t>::max())) return invalid;
    s.remove_prefix(i);
  }
  return negative ? -total : total;
}

std::string FormatGoDuration(absl::Duration d) {
  int64_t ns = absl::ToInt64Nanoseconds(d);
  if (ns == 0) return "0s";
  bool negative = ns < 0;
  uint64_t u = negative ? static_cast<uint64_t>(-(ns + 1)) + 1 : static_cast<uint64_t>(ns);
  std::string out;
  if (u < 1000000000ULL) {
    if (u < 1000ULL) {
      out = absl::StrCat(u, "ns");
    } else if (u < 1000000ULL) {
      out = "\xc2\xb5s";
      u = AppendFraction(&out, u, 3);
      out = absl::StrCat(u, out);
    } else {
      out = "ms";
      u = AppendFraction(&out, u, 6);
      out = absl::StrCat(u, out);
    }
  } else {
    out = "s";
    u = AppendFraction(&out, u, 9);
    out = absl::StrCat(u % 60, out);
    u /= 60;
    if (u > 0) {
      out = absl::StrCat(u % 60, "m", out);
      u /= 60;
      if (u > 0) out = absl::StrCat(u, "h", out);
    }
  }
  return negative ? "-" + out : out;
}

absl::StatusOr<NormalizedArgs> NormalizeGoArgs(
    const std::vector<std::string>& args,
    const std::function<bool(const std::string& name, FlagArity* arity)>& lookup) {
  NormalizedArgs result;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& s = args[i];
    if (s.size() < 2 || s[0] != '-') {
      result.positional.assign(args.begin() + static_cast<std::ptrdiff_t>(i), args.end());
      break;
    }
    size_t minuses = 1;
    if (s[1] == '-') {
      minuses = 2;
      if (s.size() == 2) {
        result.positional.assign(args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
        break;
      }
    }
    std::string name = s.substr(minuses);
    if (name.empty() || name[0] == '-' || name[0] == '=') {
      return absl::InvalidArgumentError("bad flag syntax: " + s);
    }
    std::string value;
    bool has_value = false;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
      has_value = true;
    }
    FlagArity arity;
    if (!lookup(name, &arity)) {
      if (name == "h" || name == "help") {
        result.help_requested = true;
        break;
      }
      return absl::InvalidArgumentError("flag provided but not defined: -" + name);
    }
    if (arity == FlagArity::kBoolean) {
      if (!has_value) value = "true";
    } else if (!has_value) {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError("flag needs an argument: -" + name);
      }
      value = args[++i];
    }
    // CLI11 reads "--name=" as "the value follows", so an empty value goes
    // as its own token.
    if (value.empty()) {
      result.tokens.push_back("--" + name);
      result.tokens.push_back("");
    } else {
      result.tokens.push_back("--" + name + "=" + value);
    }
  }
  return result;
}

struct FlagSet::Flag {
  std::string name;
  std::string usage;
  // Go's type word in usage ("string", "int", "duration", "value"); empty
  // for booleans.
  std::string type_name;
  // Shown as "(default ...)" when non-empty.
  std::string default_text;
  FlagArity arity = FlagArity::kValue;
  std::function<absl::Status(const std::string&)> set;
  bool is_set = false;
};

FlagSet::FlagSet(std::string command_name) : command_name_(std::move(command_name)) {}

FlagSet::~FlagSet() = default;

void FlagSet::Add(std::unique_ptr<Flag> flag) {
  std::string name = flag->name;
  if (!flags_.emplace(name, std::move(flag)).second) {
    std::fprintf(stderr, "FlagSet %s: flag -%s registered twice\n", command_name_.c_str(),
                 name.c_str());
    std::abort();
  }
}

void FlagSet::String(const std::string& name, std::string* target,
                     const std::string& default_value, const std::string& usage) {
  *target = default_value;
  auto f = std::make_unique<Flag>();
  f->name = name;
  f->usage = usage;
  f->type_name = "string";
  if (!default_value.empty()) f->default_text = GoQuote(default_value);
  f->set = [target](const std::string& v) {
    *target = v;
    return absl::OkStatus();
  };
  Add(std::move(f));
}

void FlagSet::Int(const std::string& name, int64_t* target, int64_t default_value,
                  const std::string& usage) {
  *target = default_value;
  auto f = std::make_unique<Flag>();
  f->name = name;
  f->usage = usage;
  f->type_name = "int";
  if (default_value != 0) f->default_text = absl::StrCat(default_value);
  f->set = [target](const std::string& v) -> absl::Status {
    absl::StatusOr<int64_t> parsed = ParseGoInt(v);
    if (!parsed.ok()) return parsed.status();
    *target = *parsed;
    return absl::OkStatus();
  };
  Add(std::move(f));
}

void FlagSet::Bool(const std::string& name, bool* target, bool default_value,
                   const std::string& usage) {
  *target = default_value;
  auto f = std::make_unique<Flag>();
  f->name = name;
  f->usage = usage;
  f->arity = FlagArity::kBoolean;
  if (default_value) f->default_text = "true";
  f->set = [target](const std::string& v) -> absl::Status {
    absl::StatusOr<bool> parsed = ParseGoBool(v);
    if (!parsed.ok()) return parsed.status();
    *target = *parsed;
    return absl::OkStatus();
  };
  Add(std::move(f));
}

void FlagSet::Duration(const std::string& name, absl::Duration* target,
                       absl::Duration default_value, const std::string& usage) {
  *target = default_value;
  auto f = std::make_unique<Flag>();
  f->name = name;
  f->usage = usage;
  f->type_name = "duration";
  if (default_value != absl::ZeroDuration()) f->default_text = FormatGoDuration(default_value);
  f->set = [target](const std::string& v) -> absl::Status {
    absl::StatusOr<absl::Duration> parsed = ParseGoDuration(v);
    if (!parsed.ok()) return parsed.status();
    *target = *parsed;
    return absl::OkStatus();
  };
  Add(std::move(f));
}

void FlagSet::StringList(const std::string& name, std::vector<std::string>* target,
                         const std::string& usage) {
  target->clear();
  auto f = std::make_unique<Flag>();
  f->name = name;
  f->usage = usage;
  f->type_name = "value";
  f->set = [target](const std::string& v) {
    target->push_back(v);
    return absl::OkStatus();
  };
  Add(std::move(f));
}

void FlagSet::Func(const std::string& name, const std::string& usage,
                   const std::string& default_text,
                   std::function<absl::Status(const std::string& value)> set) {
  auto f = std::make_unique<Flag>();
  f->name = name;
  f->usage = usage;
  f->type_name = "value";
  f->default_text = default_text;
  f->set = std::move(set);
  Add(std::move(f));
}

absl::Status FlagSet::Parse(const std::vector<std::string>& args) {
  help_requested_ = false;
  positional_.clear();
  for (auto& [name, flag] : flags_) flag->is_set = false;

  absl::StatusOr<NormalizedArgs> normalized =
      NormalizeGoArgs(args, [this](const std::string& name, FlagArity* arity) {
        auto it = flags_.find(name);
        if (it == flags_.end()) return false;
        *arity = it->second->arity;
        return true;
      });
  if (!normalized.ok()) return normalized.status();
  help_requested_ = normalized->help_requested;
  positional_ = std::move(normalized->positional);

  CLI::App app(command_name_);
  app.set_help_flag();
  app.allow_extras(false);
  absl::Status failure;
  for (auto& [name, flag_ptr] : flags_) {
    Flag* flag = flag_ptr.get();
    CLI::Option* option = app.add_option_function<std::string>(
        "--" + name,
        [flag, &failure](const std::string& value) {
          absl::Status s = flag->set(value);
          if (!s.ok()) {
            failure = absl::InvalidArgumentError(
                flag->arity == FlagArity::kBoolean
                    ? absl::StrCat("invalid boolean value ", GoQuote(value), " for -", flag->name,
                                   ": ", s.message())
                    : absl::StrCat("invalid value ", GoQuote(value), " for flag -", flag->name, ": ",
                                   s.message()));
            throw CLI::ValidationError("--" + flag->name, std::string(failure.message()));
          }
          flag->is_set = true;
        },
        flag->usage);
    // Each occurrence converts when it is read, so the first bad one is
    // reported, and repeatable flags see every value.
    option->trigger_on_parse();
    option->expected(1);
    option->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  }
  std::vector<std::string> reversed(normalized->tokens.rbegin(), normalized->tokens.rend());
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    if (!failure.ok()) return failure;
    return absl::InvalidArgumentError(e.what());
  }
  return absl::OkStatus();
}

bool FlagSet::IsSet(const std::string& name) const {
  auto it = flags_.find(name);
  return it != flags_.end() && it->second->is_set;
}

std::string FlagSet::Usage() const {
  std::string out = absl::StrCat("Usage of ", command_name_, ":\n");
  for (const auto& [name, flag] : flags_) {
    std::string line = absl::StrCat("  -", name);
    if (!flag->type_name.empty()) absl::StrAppend(&line, " ", flag->type_name);
    // Go keeps the usage of one-letter boolean flags on the same line.
    absl::StrAppend(&line, line.size() <= 4 ? "\t" : "\n    \t");
    absl::StrAppend(&line, absl::StrReplaceAll(flag->usage, {{"\n", "\n    \t"}}));
    if (!flag->default_text.empty()) absl::StrAppend(&line, " (default ", flag->default_text, ")");
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

}  // namespace sigil::cli
