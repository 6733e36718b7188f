#include "server/cli/entry_data.h"

#include <cstdint>
#include <limits>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "server/cli/cli_util.h"

namespace sigil::server::cli {
namespace {

namespace types = ::spire::api::types;
using Json = nlohmann::json;

absl::Status Error(const std::string& where, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(where, ": ", what));
}

absl::Status ExpectString(const Json& v, const std::string& where, const std::string& key,
                          std::string* out) {
  if (v.is_null()) return absl::OkStatus();
  if (!v.is_string()) return Error(where, absl::StrCat(GoQuote(key), " must be a string"));
  *out = v.get<std::string>();
  return absl::OkStatus();
}

absl::Status ExpectBool(const Json& v, const std::string& where, const std::string& key,
                        bool* out) {
  if (v.is_null()) return absl::OkStatus();
  if (!v.is_boolean()) return Error(where, absl::StrCat(GoQuote(key), " must be true or false"));
  *out = v.get<bool>();
  return absl::OkStatus();
}

absl::Status ExpectInt(const Json& v, const std::string& where, const std::string& key,
                       int64_t min, int64_t max, int64_t* out) {
  if (v.is_null()) return absl::OkStatus();
  bool in_range = false;
  int64_t value = 0;
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    in_range = u <= static_cast<uint64_t>(max);
    value = static_cast<int64_t>(u);
  } else if (v.is_number_integer()) {
    value = v.get<int64_t>();
    in_range = value >= min && value <= max;
  } else {
    return Error(where, absl::StrCat(GoQuote(key), " must be an integer"));
  }
  if (!in_range) {
    return Error(where, absl::StrCat(GoQuote(key), " must be between ", min, " and ", max));
  }
  *out = value;
  return absl::OkStatus();
}

absl::Status ExpectStringList(const Json& v, const std::string& where, const std::string& key,
                              std::vector<std::string>* out) {
  if (v.is_null()) return absl::OkStatus();
  if (!v.is_array()) return Error(where, absl::StrCat(GoQuote(key), " must be an array"));
  for (size_t i = 0; i < v.size(); ++i) {
    if (!v[i].is_string()) {
      return Error(absl::StrCat(where, ".", key, "[", i, "]"), "must be a string");
    }
    out->push_back(v[i].get<std::string>());
  }
  return absl::OkStatus();
}

// The entry's value for `key` compared as Go's decoder does (exact match
// first, then case-insensitive), or nullptr.
const Json* Member(const Json& object, const std::string& key) {
  auto it = object.find(key);
  if (it != object.end()) return &*it;
  for (auto i = object.begin(); i != object.end(); ++i) {
    if (absl::EqualsIgnoreCase(i.key(), key)) return &i.value();
  }
  return nullptr;
}

absl::StatusOr<types::Entry> ParseSpireEntry(const Json& e, const std::string& where) {
  static const char* const kKeys[] = {
      "selectors", "parent_id",  "spiffe_id",       "x509_svid_ttl", "federates_with",
      "entry_id",  "admin",      "downstream",      "entryExpiry",   "dns_names",
      "revision_number", "store_svid", "jwt_svid_ttl", "hint"};
  for (auto it = e.begin(); it != e.end(); ++it) {
    bool known = false;
    for (const char* k : kKeys) known = known || absl::EqualsIgnoreCase(it.key(), k);
    if (!known) return Error(where, absl::StrCat("unknown field ", GoQuote(it.key())));
  }
  auto get = [&e](const char* key) -> const Json& {
    static const Json* const kNull = new Json();
    const Json* v = Member(e, key);
    return v == nullptr ? *kNull : *v;
  };

  types::Entry out;
  std::string spiffe_id, parent_id;
  absl::Status s = ExpectString(get("spiffe_id"), where, "spiffe_id", &spiffe_id);
  if (s.ok()) s = ExpectString(get("parent_id"), where, "parent_id", &parent_id);
  if (!s.ok()) return s;
  absl::StatusOr<types::SPIFFEID> id = ParseSpiffeIdArg("SPIFFE ID", spiffe_id);
  if (!id.ok()) return Error(where, id.status().message());
  *out.mutable_spiffe_id() = *id;
  absl::StatusOr<types::SPIFFEID> parent = ParseSpiffeIdArg("parent ID", parent_id);
  if (!parent.ok()) return Error(where, parent.status().message());
  *out.mutable_parent_id() = *parent;

  const Json& selectors = get("selectors");
  if (!selectors.is_null()) {
    if (!selectors.is_array()) return Error(where, "\"selectors\" must be an array");
    for (size_t i = 0; i < selectors.size(); ++i) {
      std::string sw = absl::StrCat(where, ".selectors[", i, "]");
      const Json& sel = selectors[i];
      if (!sel.is_object()) return Error(sw, "must be an object with \"type\" and \"value\"");
      for (auto it = sel.begin(); it != sel.end(); ++it) {
        if (!absl::EqualsIgnoreCase(it.key(), "type") &&
            !absl::EqualsIgnoreCase(it.key(), "value")) {
          return Error(sw, absl::StrCat("unknown field ", GoQuote(it.key())));
        }
      }
      types::Selector* out_sel = out.add_selectors();
      const Json null_value;
      const Json* type = Member(sel, "type");
      const Json* value = Member(sel, "value");
      absl::Status ss =
          ExpectString(type ? *type : null_value, sw, "type", out_sel->mutable_type());
      if (ss.ok()) {
        ss = ExpectString(value ? *value : null_value, sw, "value", out_sel->mutable_value());
      }
      if (!ss.ok()) return ss;
    }
  }

  int64_t x509_ttl = 0, jwt_ttl = 0, expiry = 0, revision = 0;
  constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();
  constexpr int64_t kInt32Min = std::numeric_limits<int32_t>::min();
  constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
  constexpr int64_t kInt64Min = std::numeric_limits<int64_t>::min();
  s = ExpectInt(get("x509_svid_ttl"), where, "x509_svid_ttl", kInt32Min, kInt32Max, &x509_ttl);
  if (s.ok()) s = ExpectInt(get("jwt_svid_ttl"), where, "jwt_svid_ttl", kInt32Min, kInt32Max, &jwt_ttl);
  if (s.ok()) s = ExpectInt(get("entryExpiry"), where, "entryExpiry", kInt64Min, kInt64Max, &expiry);
  if (s.ok()) {
    s = ExpectInt(get("revision_number"), where, "revision_number", kInt64Min, kInt64Max,
                  &revision);
  }
  if (!s.ok()) return s;
  out.set_x509_svid_ttl(static_cast<int32_t>(x509_ttl));
  out.set_jwt_svid_ttl(static_cast<int32_t>(jwt_ttl));
  out.set_expires_at(expiry);
  out.set_revision_number(revision);

  std::vector<std::string> federates_with, dns_names;
  s = ExpectStringList(get("federates_with"), where, "federates_with", &federates_with);
  if (s.ok()) s = ExpectStringList(get("dns_names"), where, "dns_names", &dns_names);
  if (!s.ok()) return s;
  for (const std::string& td : federates_with) {
    absl::StatusOr<std::string> name = ParseTrustDomainArg(td);
    if (!name.ok()) {
      return Error(where, absl::StrCat("invalid federated trust domain: ", name.status().message()));
    }
    out.add_federates_with(*name);
  }
  for (const std::string& dns : dns_names) out.add_dns_names(dns);

  bool admin = false, downstream = false, store_svid = false;
  std::string entry_id, hint;
  s = ExpectBool(get("admin"), where, "admin", &admin);
  if (s.ok()) s = ExpectBool(get("downstream"), where, "downstream", &downstream);
  if (s.ok()) s = ExpectBool(get("store_svid"), where, "store_svid", &store_svid);
  if (s.ok()) s = ExpectString(get("entry_id"), where, "entry_id", &entry_id);
  if (s.ok()) s = ExpectString(get("hint"), where, "hint", &hint);
  if (!s.ok()) return s;
  out.set_admin(admin);
  out.set_downstream(downstream);
  out.set_store_svid(store_svid);
  out.set_id(entry_id);
  out.set_hint(hint);
  return out;
}

absl::StatusOr<types::Entry> ParseProtoEntry(const Json& e, const std::string& where) {
  types::Entry out;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  auto s = google::protobuf::util::JsonStringToMessage(e.dump(), &out, options);
  if (!s.ok()) return Error(where, std::string(s.message().data(), s.message().size()));
  return out;
}

}  // namespace

absl::StatusOr<std::vector<types::Entry>> ParseEntryData(absl::string_view json) {
  Json doc = Json::parse(json.begin(), json.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    return absl::InvalidArgumentError("malformed JSON: the entries file is not valid JSON");
  }
  if (!doc.is_object()) {
    return absl::InvalidArgumentError("the entries file must be a JSON object with \"entries\"");
  }
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    if (!absl::EqualsIgnoreCase(it.key(), "entries")) {
      return absl::InvalidArgumentError(absl::StrCat("unknown field ", GoQuote(it.key()),
                                                     " (the file holds {\"entries\": [...]})"));
    }
  }
  const Json* entries = Member(doc, "entries");
  if (entries == nullptr || entries->is_null()) return std::vector<types::Entry>{};
  if (!entries->is_array()) return absl::InvalidArgumentError("\"entries\" must be an array");

  std::vector<types::Entry> out;
  for (size_t i = 0; i < entries->size(); ++i) {
    std::string where = absl::StrCat("entries[", i, "]");
    const Json& e = (*entries)[i];
    if (!e.is_object()) return Error(where, "must be an object");
    const Json* id = Member(e, "spiffe_id");
    if (id == nullptr) id = Member(e, "spiffeId");
    absl::StatusOr<types::Entry> entry =
        id != nullptr && id->is_object() ? ParseProtoEntry(e, where) : ParseSpireEntry(e, where);
    if (!entry.ok()) return entry.status();
    out.push_back(*std::move(entry));
  }
  return out;
}

}  // namespace sigil::server::cli
