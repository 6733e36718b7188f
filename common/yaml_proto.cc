#include "common/yaml_proto.h"

#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/reflection.h"

namespace sigil {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

class Loader {
 public:
  void LoadMessage(const YAML::Node& node, const std::string& path, Message* msg);
  std::vector<std::string>& errors() { return errors_; }

 private:
  void Error(const std::string& path, absl::string_view what) {
    errors_.push_back(absl::StrCat(path.empty() ? "<root>" : path, ": ", what));
  }
  void LoadField(const YAML::Node& node, const std::string& path, Message* msg,
                 const FieldDescriptor* field);
  // Sets (or adds, for repeated fields) one scalar or message value.
  void LoadValue(const YAML::Node& node, const std::string& path, Message* msg,
                 const FieldDescriptor* field);
  bool LoadDuration(const YAML::Node& node, const std::string& path,
                    google::protobuf::Duration* out);

  std::vector<std::string> errors_;
};

bool ParseInt(const std::string& s, long long min, long long max, long long* out) {
  if (s.empty()) return false;
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno != 0 || *end != '\0' || v < min || v > max) return false;
  *out = v;
  return true;
}

bool ParseUint(const std::string& s, unsigned long long max, unsigned long long* out) {
  if (s.empty() || s[0] == '-') return false;
  errno = 0;
  char* end = nullptr;
  unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (errno != 0 || *end != '\0' || v > max) return false;
  *out = v;
  return true;
}

std::string Join(const std::string& path, const std::string& key) {
  return path.empty() ? key : absl::StrCat(path, ".", key);
}

void Loader::LoadMessage(const YAML::Node& node, const std::string& path, Message* msg) {
  if (node.IsNull()) return;
  if (!node.IsMap()) {
    Error(path, "expected a mapping");
    return;
  }
  const Descriptor* desc = msg->GetDescriptor();
  for (const auto& kv : node) {
    if (!kv.first.IsScalar()) {
      Error(path, "keys must be strings");
      continue;
    }
    std::string key = kv.first.Scalar();
    std::string child = Join(path, key);
    const FieldDescriptor* field = desc->FindFieldByName(key);
    if (field == nullptr) {
      Error(child, "unknown key");
      continue;
    }
    LoadField(kv.second, child, msg, field);
  }
}

void Loader::LoadField(const YAML::Node& node, const std::string& path, Message* msg,
                       const FieldDescriptor* field) {
  const Reflection* refl = msg->GetReflection();
  if (field->is_map()) {
    if (node.IsNull()) return;
    if (!node.IsMap()) {
      Error(path, "expected a mapping");
      return;
    }
    const Descriptor* entry_desc = field->message_type();
    const FieldDescriptor* key_field = entry_desc->map_key();
    const FieldDescriptor* value_field = entry_desc->map_value();
    if (key_field->cpp_type() != FieldDescriptor::CPPTYPE_STRING) {
      Error(path, "only string-keyed maps are supported in config");
      return;
    }
    for (const auto& kv : node) {
      if (!kv.first.IsScalar()) {
        Error(path, "keys must be strings");
        continue;
      }
      std::string child = Join(path, kv.first.Scalar());
      Message* entry = refl->AddMessage(msg, field);
      entry->GetReflection()->SetString(entry, key_field, kv.first.Scalar());
      LoadValue(kv.second, child, entry, value_field);
    }
    return;
  }
  if (field->is_repeated()) {
    if (node.IsNull()) return;
    if (!node.IsSequence()) {
      Error(path, "expected a list");
      return;
    }
    for (size_t i = 0; i < node.size(); ++i) {
      LoadValue(node[i], absl::StrCat(path, "[", i, "]"), msg, field);
    }
    return;
  }
  LoadValue(node, path, msg, field);
}

bool Loader::LoadDuration(const YAML::Node& node, const std::string& path,
                          google::protobuf::Duration* out) {
  if (!node.IsScalar()) {
    Error(path, "expected a duration such as \"90s\" or \"1h30m\"");
    return false;
  }
  std::string s = node.Scalar();
  absl::Duration d;
  long long secs;
  if (ParseInt(s, 0, std::numeric_limits<int64_t>::max() / 1000000000, &secs)) {
    d = absl::Seconds(secs);
  } else if (!absl::ParseDuration(s, &d) || d == absl::InfiniteDuration() ||
             d == -absl::InfiniteDuration()) {
    Error(path, absl::StrCat("invalid duration \"", s,
                             "\" (expected a number with a unit, such as \"90s\", \"10m\", \"1h30m\")"));
    return false;
  }
  if (d < absl::ZeroDuration()) {
    Error(path, absl::StrCat("duration \"", s, "\" must not be negative"));
    return false;
  }
  int64_t seconds = absl::IDivDuration(d, absl::Seconds(1), &d);
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(d)));
  return true;
}

void Loader::LoadValue(const YAML::Node& node, const std::string& path, Message* msg,
                       const FieldDescriptor* field) {
  const Reflection* refl = msg->GetReflection();
  const bool rep = field->is_repeated();
  if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
    if (field->message_type()->full_name() == "google.protobuf.Duration") {
      google::protobuf::Duration d;
      if (!LoadDuration(node, path, &d)) return;
      Message* target = rep ? refl->AddMessage(msg, field) : refl->MutableMessage(msg, field);
      target->CopyFrom(d);
      return;
    }
    Message* target = rep ? refl->AddMessage(msg, field) : refl->MutableMessage(msg, field);
    LoadMessage(node, path, target);
    return;
  }
  if (!node.IsScalar()) {
    Error(path, "expected a single value");
    return;
  }
  const std::string s = node.Scalar();
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      rep ? refl->AddString(msg, field, s) : refl->SetString(msg, field, s);
      return;
    case FieldDescriptor::CPPTYPE_BOOL: {
      std::string lower = absl::AsciiStrToLower(s);
      bool v;
      if (lower == "true") {
        v = true;
      } else if (lower == "false") {
        v = false;
      } else {
        Error(path, absl::StrCat("expected true or false, got \"", s, "\""));
        return;
      }
      rep ? refl->AddBool(msg, field, v) : refl->SetBool(msg, field, v);
      return;
    }
    case FieldDescriptor::CPPTYPE_INT32:
    case FieldDescriptor::CPPTYPE_INT64: {
      bool is32 = field->cpp_type() == FieldDescriptor::CPPTYPE_INT32;
      long long v;
      if (!ParseInt(s, is32 ? std::numeric_limits<int32_t>::min() : std::numeric_limits<int64_t>::min(),
                    is32 ? std::numeric_limits<int32_t>::max() : std::numeric_limits<int64_t>::max(), &v)) {
        Error(path, absl::StrCat("expected an integer", is32 ? " (32-bit)" : "", ", got \"", s, "\""));
        return;
      }
      if (is32) {
        rep ? refl->AddInt32(msg, field, static_cast<int32_t>(v))
            : refl->SetInt32(msg, field, static_cast<int32_t>(v));
      } else {
        rep ? refl->AddInt64(msg, field, v) : refl->SetInt64(msg, field, v);
      }
      return;
    }
    case FieldDescriptor::CPPTYPE_UINT32:
    case FieldDescriptor::CPPTYPE_UINT64: {
      bool is32 = field->cpp_type() == FieldDescriptor::CPPTYPE_UINT32;
      unsigned long long v;
      if (!ParseUint(s, is32 ? std::numeric_limits<uint32_t>::max() : std::numeric_limits<uint64_t>::max(),
                     &v)) {
        Error(path, absl::StrCat("expected a non-negative integer", is32 ? " (32-bit)" : "", ", got \"", s,
                                 "\""));
        return;
      }
      if (is32) {
        rep ? refl->AddUInt32(msg, field, static_cast<uint32_t>(v))
            : refl->SetUInt32(msg, field, static_cast<uint32_t>(v));
      } else {
        rep ? refl->AddUInt64(msg, field, v) : refl->SetUInt64(msg, field, v);
      }
      return;
    }
    case FieldDescriptor::CPPTYPE_DOUBLE:
    case FieldDescriptor::CPPTYPE_FLOAT: {
      char* end = nullptr;
      double v = std::strtod(s.c_str(), &end);
      if (s.empty() || *end != '\0') {
        Error(path, absl::StrCat("expected a number, got \"", s, "\""));
        return;
      }
      if (field->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE) {
        rep ? refl->AddDouble(msg, field, v) : refl->SetDouble(msg, field, v);
      } else {
        rep ? refl->AddFloat(msg, field, static_cast<float>(v))
            : refl->SetFloat(msg, field, static_cast<float>(v));
      }
      return;
    }
    case FieldDescriptor::CPPTYPE_ENUM: {
      const auto* value = field->enum_type()->FindValueByName(s);
      if (value == nullptr) {
        value = field->enum_type()->FindValueByName(absl::AsciiStrToUpper(s));
      }
      if (value == nullptr) {
        std::vector<std::string> names;
        for (int i = 0; i < field->enum_type()->value_count(); ++i) {
          names.push_back(field->enum_type()->value(i)->name());
        }
        Error(path, absl::StrCat("unknown value \"", s, "\" (one of: ", absl::StrJoin(names, ", "), ")"));
        return;
      }
      rep ? refl->AddEnum(msg, field, value) : refl->SetEnum(msg, field, value);
      return;
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return;  // handled above
  }
}

}  // namespace

absl::Status MergeYamlIntoProto(absl::string_view yaml, Message* msg) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("malformed YAML: ", e.what()));
  }
  Loader loader;
  loader.LoadMessage(root, "", msg);
  if (!loader.errors().empty()) {
    return absl::InvalidArgumentError(absl::StrJoin(loader.errors(), "\n"));
  }
  return absl::OkStatus();
}

}  // namespace sigil
