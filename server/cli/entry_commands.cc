// entry create | update | delete | show | count — SPIRE's `spire-server
// entry` commands over the Entry service.

#include <algorithm>
#include <limits>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "apitypes/convert.h"
#include "common/status_macros.h"
#include "google/protobuf/wrappers.pb.h"
#include "server/cli/command.h"
#include "server/cli/entry_data.h"

namespace sigil::server::cli {
namespace {

namespace entryv1 = ::spire::api::server::entry::v1;
namespace types = ::spire::api::types;

// Parent of node entries (`-node`): the server's own ID in the entry's
// trust domain.
constexpr char kServerIdPath[] = "/spire/server";
constexpr int32_t kListPageSize = 500;

// The flags that describe one entry (create and update).
struct EntryFlags {
  std::string entry_id;
  std::string parent_id;
  std::string spiffe_id;
  std::string data;
  std::string hint;
  int64_t ttl = 0;
  int64_t x509_svid_ttl = 0;
  int64_t jwt_svid_ttl = 0;
  int64_t entry_expiry = 0;
  std::vector<std::string> selectors;
  std::vector<std::string> federates_with;
  std::vector<std::string> dns_names;
  bool admin = false;
  bool downstream = false;
  bool store_svid = false;
  bool node = false;
};

void AddEntryFlags(FlagSet& f, EntryFlags* e, bool create) {
  if (create) {
    f.String("entryID", &e->entry_id, "",
             "A custom ID for this registration entry (optional). If not set, a new entry ID "
             "will be generated");
    f.Bool("node", &e->node, false,
           "If set, this entry will be applied to matching nodes rather than workloads");
  } else {
    f.String("entryID", &e->entry_id, "", "The Registration Entry ID of the record to update");
  }
  f.String("parentID", &e->parent_id, "", "The SPIFFE ID of this record's parent");
  f.String("spiffeID", &e->spiffe_id, "", "The SPIFFE ID that this record represents");
  f.Int("ttl", &e->ttl, 0,
        "The lifetime, in seconds, for SVIDs issued based on this registration entry. This "
        "flag is deprecated in favor of x509SVIDTTL and jwtSVIDTTL");
  f.Int("x509SVIDTTL", &e->x509_svid_ttl, 0,
        "The lifetime, in seconds, for x509-SVIDs issued based on this registration entry. "
        "Overrides ttl flag");
  f.Int("jwtSVIDTTL", &e->jwt_svid_ttl, 0,
        "The lifetime, in seconds, for JWT-SVIDs issued based on this registration entry. "
        "Overrides ttl flag");
  f.String("data", &e->data, "",
           "Path to a file containing registration JSON (optional). If set to '-', read the "
           "JSON from stdin.");
  f.StringList("selector", &e->selectors,
               "A colon-delimited type:value selector. Can be used more than once");
  f.StringList("federatesWith", &e->federates_with,
               "SPIFFE ID of a trust domain to federate with. Can be used more than once");
  f.Bool("admin", &e->admin, false,
         "If set, the SPIFFE ID in this entry will be granted access to the server's "
         "management APIs");
  f.Bool("storeSVID", &e->store_svid, false,
         "A boolean value that, when set, indicates that the resulting issued SVID from this "
         "entry must be stored through an SVIDStore plugin");
  f.Bool("downstream", &e->downstream, false,
         "A boolean value that, when set, indicates that the entry describes a downstream "
         "server");
  f.Int("entryExpiry", &e->entry_expiry, 0,
        "An expiry, from epoch in seconds, for the resulting registration entry to be pruned");
  f.StringList("dns", &e->dns_names,
               "A DNS name that will be included in SVIDs issued based on this entry, where "
               "appropriate. Can be used more than once");
  f.String("hint", &e->hint, "",
           "The entry hint, used to disambiguate entries with the same SPIFFE ID");
}

// -data replaces every other entry flag; mixing them would silently drop
// the flags (SPIRE ignores them), so it is refused.
absl::Status RejectFlagsBesideData(const FlagSet& flags) {
  static const char* const kEntryFlags[] = {
      "entryID", "node",   "parentID",   "spiffeID",  "ttl",         "x509SVIDTTL",
      "jwtSVIDTTL", "selector", "federatesWith", "admin", "storeSVID", "downstream",
      "entryExpiry", "dns", "hint"};
  std::vector<std::string> given;
  for (const char* name : kEntryFlags) {
    if (flags.IsSet(name)) given.push_back(absl::StrCat("-", name));
  }
  if (given.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "the -data flag can't be combined with other entry flags (", absl::StrJoin(given, ", "),
      "): the file describes the entries completely"));
}

absl::Status ValidateTtls(const EntryFlags& e) {
  if (e.ttl < 0) return absl::InvalidArgumentError("a positive TTL is required");
  if (e.x509_svid_ttl < 0) return absl::InvalidArgumentError("a positive x509-SVID TTL is required");
  if (e.jwt_svid_ttl < 0) return absl::InvalidArgumentError("a positive JWT-SVID TTL is required");
  if (e.ttl > 0 && (e.x509_svid_ttl > 0 || e.jwt_svid_ttl > 0)) {
    return absl::InvalidArgumentError(
        "use x509SVIDTTL and jwtSVIDTTL flags or the deprecated ttl flag");
  }
  constexpr int64_t kMax = std::numeric_limits<int32_t>::max();
  for (auto [name, value] : {std::pair<const char*, int64_t>{"ttl", e.ttl},
                             {"x509SVIDTTL", e.x509_svid_ttl},
                             {"jwtSVIDTTL", e.jwt_svid_ttl}}) {
    if (value > kMax) {
      return absl::InvalidArgumentError(
          absl::StrCat("-", name, " is too large: at most ", kMax, " seconds"));
    }
  }
  return absl::OkStatus();
}

// Builds the entry the flags describe; `parent` is already resolved.
absl::StatusOr<types::Entry> EntryFromFlags(const EntryFlags& e, const types::SPIFFEID& id,
                                            const types::SPIFFEID& parent) {
  types::Entry out;
  out.set_id(e.entry_id);
  *out.mutable_spiffe_id() = id;
  *out.mutable_parent_id() = parent;
  out.set_downstream(e.downstream);
  out.set_expires_at(e.entry_expiry);
  out.set_store_svid(e.store_svid);
  out.set_admin(e.admin);
  out.set_hint(e.hint);
  // The deprecated -ttl only ever set the X509-SVID lifetime.
  out.set_x509_svid_ttl(static_cast<int32_t>(e.x509_svid_ttl != 0 ? e.x509_svid_ttl : e.ttl));
  out.set_jwt_svid_ttl(static_cast<int32_t>(e.jwt_svid_ttl));
  for (const std::string& dns : e.dns_names) out.add_dns_names(dns);
  for (const std::string& s : e.selectors) {
    absl::StatusOr<types::Selector> sel = ParseSelectorArg(s);
    if (!sel.ok()) return sel.status();
    *out.add_selectors() = *sel;
  }
  for (const std::string& td : e.federates_with) {
    absl::StatusOr<std::string> name = ParseTrustDomainArg(td);
    if (!name.ok()) return name.status();
    out.add_federates_with(*name);
  }
  return out;
}

absl::StatusOr<std::vector<types::Entry>> LoadEntries(const std::string& path, std::istream& in) {
  absl::StatusOr<std::string> data = ReadInput(path, in);
  if (!data.ok()) return data.status();
  absl::StatusOr<std::vector<types::Entry>> entries = ParseEntryData(*data);
  if (!entries.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot parse ", path == "-" ? "standard input" : path, ": ", entries.status().message()));
  }
  if (entries->empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path == "-" ? "standard input" : path, " holds no entries"));
  }
  return entries;
}

// Prints a batch create/update response the way SPIRE does: successes to
// stdout, failures with their status to stderr. Returns the failure count.
template <typename Response>
int PrintBatchResults(const Response& resp, const char* verb, CommandContext& ctx) {
  int failed = 0;
  for (const auto& r : resp.results()) {
    if (r.status().code() != 0) ++failed;
  }
  if (ctx.json()) {
    ctx.PrintJson(resp);
    return failed;
  }
  for (const auto& r : resp.results()) {
    if (r.status().code() == 0) PrintEntry(r.entry(), ctx.out());
  }
  for (const auto& r : resp.results()) {
    if (r.status().code() == 0) continue;
    ctx.err() << "Failed to " << verb << " the following entry (code: "
              << GrpcCodeName(r.status().code()) << ", msg: " << GoQuote(r.status().message())
              << "):\n";
    PrintEntry(r.entry(), ctx.err());
  }
  return failed;
}

// The server does not echo entries that failed; show what was sent.
template <typename Response, typename Request>
absl::Status FillFailedEntries(const Request& req, Response* resp) {
  if (resp->results_size() != req.entries_size()) {
    return absl::InternalError(absl::StrCat("server returned ", resp->results_size(),
                                            " results for ", req.entries_size(), " entries"));
  }
  for (int i = 0; i < resp->results_size(); ++i) {
    auto* r = resp->mutable_results(i);
    if (r->status().code() != 0 && !r->has_entry()) *r->mutable_entry() = req.entries(i);
  }
  return absl::OkStatus();
}

class EntryCreateCommand final : public Command {
 public:
  void AddFlags(FlagSet& flags) override { AddEntryFlags(flags, &e_, /*create=*/true); }

  absl::Status Run(const FlagSet& flags, CommandContext& ctx) override {
    entryv1::BatchCreateEntryRequest req;
    if (!e_.data.empty()) {
      SIGIL_RETURN_IF_ERROR(RejectFlagsBesideData(flags));
      SIGIL_ASSIGN_OR_RETURN(std::vector<types::Entry> entries, LoadEntries(e_.data, ctx.in()));
      for (types::Entry& entry : entries) *req.add_entries() = std::move(entry);
    } else {
      if (e_.selectors.empty()) return absl::InvalidArgumentError("at least one selector is required");
      if (e_.node && !e_.federates_with.empty()) {
        return absl::InvalidArgumentError("node entries can not federate");
      }
      if (e_.parent_id.empty() && !e_.node) {
        return absl::InvalidArgumentError("a parent ID is required if the node flag is not set");
      }
      if (e_.spiffe_id.empty()) return absl::InvalidArgumentError("a SPIFFE ID is required");
      SIGIL_RETURN_IF_ERROR(ValidateTtls(e_));
      SIGIL_ASSIGN_OR_RETURN(types::SPIFFEID id, ParseSpiffeIdArg("SPIFFE ID", e_.spiffe_id));
      types::SPIFFEID parent;
      if (e_.node) {
        parent.set_trust_domain(id.trust_domain());
        parent.set_path(kServerIdPath);
      } else {
        SIGIL_ASSIGN_OR_RETURN(parent, ParseSpiffeIdArg("parent ID", e_.parent_id));
      }
      SIGIL_ASSIGN_OR_RETURN(*req.add_entries(), EntryFromFlags(e_, id, parent));
    }

    entryv1::BatchCreateEntryResponse resp;
    grpc::ClientContext call;
    grpc::Status st = ctx.client().Entry().BatchCreateEntry(&call, req, &resp);
    if (!st.ok()) return ctx.client().RpcError(st);
    SIGIL_RETURN_IF_ERROR(FillFailedEntries(req, &resp));
    if (PrintBatchResults(resp, "create", ctx) > 0) {
      return absl::AbortedError("failed to create one or more entries");
    }
    return absl::OkStatus();
  }

 private:
  EntryFlags e_;
};

class EntryUpdateCommand final : public Command {
 public:
  void AddFlags(FlagSet& flags) override { AddEntryFlags(flags, &e_, /*create=*/false); }

  absl::Status Run(const FlagSet& flags, CommandContext& ctx) override {
    entryv1::BatchUpdateEntryRequest req;
    if (!e_.data.empty()) {
      SIGIL_RETURN_IF_ERROR(RejectFlagsBesideData(flags));
      SIGIL_ASSIGN_OR_RETURN(std::vector<types::Entry> entries, LoadEntries(e_.data, ctx.in()));
      for (size_t i = 0; i < entries.size(); ++i) {
        if (entries[i].id().empty()) {
          return absl::InvalidArgumentError(
              absl::StrCat("entries[", i, "]: an entry ID is required to update an entry"));
        }
        *req.add_entries() = std::move(entries[i]);
      }
    } else {
      if (e_.entry_id.empty()) return absl::InvalidArgumentError("entry ID is required");
      if (e_.selectors.empty()) return absl::InvalidArgumentError("at least one selector is required");
      if (e_.parent_id.empty()) return absl::InvalidArgumentError("a parent ID is required");
      if (e_.spiffe_id.empty()) return absl::InvalidArgumentError("a SPIFFE ID is required");
      SIGIL_RETURN_IF_ERROR(ValidateTtls(e_));
      SIGIL_ASSIGN_OR_RETURN(types::SPIFFEID id, ParseSpiffeIdArg("SPIFFE ID", e_.spiffe_id));
      SIGIL_ASSIGN_OR_RETURN(types::SPIFFEID parent, ParseSpiffeIdArg("parent ID", e_.parent_id));
      SIGIL_ASSIGN_OR_RETURN(*req.add_entries(), EntryFromFlags(e_, id, parent));
    }

    entryv1::BatchUpdateEntryResponse resp;
    grpc::ClientContext call;
    grpc::Status st = ctx.client().Entry().BatchUpdateEntry(&call, req, &resp);
    if (!st.ok()) return ctx.client().RpcError(st);
    SIGIL_RETURN_IF_ERROR(FillFailedEntries(req, &resp));
    if (PrintBatchResults(resp, "update", ctx) > 0) {
      return absl::AbortedError("failed to update one or more entries");
    }
    return absl::OkStatus();
  }

 private:
  EntryFlags e_;
};

class EntryDeleteCommand final : public Command {
 public:
  void AddFlags(FlagSet& flags) override {
    flags.String("entryID", &entry_id_, "", "The Registration Entry ID of the record to delete");
  }

  absl::Status Run(const FlagSet&, CommandContext& ctx) override {
    if (entry_id_.empty()) return absl::InvalidArgumentError("an entry ID is required");
    entryv1::BatchDeleteEntryRequest req;
    req.add_ids(entry_id_);
    entryv1::BatchDeleteEntryResponse resp;
    grpc::ClientContext call;
    grpc::Status st = ctx.client().Entry().BatchDeleteEntry(&call, req, &resp);
    if (!st.ok()) return ctx.client().RpcError(st);
    if (resp.results_size() != 1) {
      return absl::InternalError(
          absl::StrCat("server returned ", resp.results_size(), " results for 1 entry"));
    }
    if (ctx.json()) ctx.PrintJson(resp);
    const types::Status& status = resp.results(0).status();
    if (status.code() != 0) {
      return absl::AbortedError(absl::StrCat("failed to delete entry: ", status.message()));
    }
    if (!ctx.json()) ctx.out() << "Deleted entry with ID: " << entry_id_ << "\n";
    return absl::OkStatus();
  }

 private:
  std::string entry_id_;
};

// The filters shared by `entry show` and `entry count`.
struct FilterFlags {
  std::string parent_id;
  std::string spiffe_id;
  std::string hint;
  std::vector<std::string> selectors;
  std::vector<std::string> federates_with;
  std::string match_selectors_on;
  std::string match_federates_with_on;
  bool downstream = false;
};

void AddFilterFlags(FlagSet& f, FilterFlags* x, const char* what) {
  f.String("parentID", &x->parent_id, "", absl::StrCat("The Parent ID of the records to ", what));
  f.String("spiffeID", &x->spiffe_id, "", absl::StrCat("The SPIFFE ID of the records to ", what));
  f.Bool("downstream", &x->downstream, false,
         "A boolean value that, when set, indicates that the entry describes a downstream "
         "server");
  f.StringList("selector", &x->selectors,
               "A colon-delimited type:value selector. Can be used more than once");
  f.StringList("federatesWith", &x->federates_with,
               "SPIFFE ID of a trust domain an entry is federate with. Can be used more than once");
  f.String("matchFederatesWithOn", &x->match_federates_with_on, "superset",
           "The match mode used when filtering by federates with. Options: exact, any, superset "
           "and subset");
  f.String("matchSelectorsOn", &x->match_selectors_on, "superset",
           "The match mode used when filtering by selectors. Options: exact, any, superset and "
           "subset");
  f.String("hint", &x->hint, "", absl::StrCat("The Hint of the records to ", what, " (optional)"));
}

absl::StatusOr<int> ParseMatchBehavior(const std::string& match) {
  // The SelectorMatch and FederatesWithMatch enums share their values.
  if (match == "exact") return types::SelectorMatch::MATCH_EXACT;
  if (match == "subset") return types::SelectorMatch::MATCH_SUBSET;
  if (match == "superset") return types::SelectorMatch::MATCH_SUPERSET;
  if (match == "any") return types::SelectorMatch::MATCH_ANY;
  return absl::InvalidArgumentError(absl::StrCat("match behavior ", GoQuote(match), " unknown"));
}

// Fills a Count/ListEntriesRequest filter (they have the same fields).
template <typename Filter>
absl::Status BuildFilter(const FilterFlags& x, const FlagSet& flags, Filter* filter) {
  SIGIL_ASSIGN_OR_RETURN(int selector_match, ParseMatchBehavior(x.match_selectors_on));
  SIGIL_ASSIGN_OR_RETURN(int federates_match, ParseMatchBehavior(x.match_federates_with_on));
  if (!x.parent_id.empty()) {
    SIGIL_ASSIGN_OR_RETURN(*filter->mutable_by_parent_id(),
                           ParseSpiffeIdArg("parent ID", x.parent_id));
  }
  if (!x.spiffe_id.empty()) {
    SIGIL_ASSIGN_OR_RETURN(*filter->mutable_by_spiffe_id(),
                           ParseSpiffeIdArg("SPIFFE ID", x.spiffe_id));
  }
  if (!x.selectors.empty()) {
    types::SelectorMatch* m = filter->mutable_by_selectors();
    for (const std::string& s : x.selectors) {
      SIGIL_ASSIGN_OR_RETURN(*m->add_selectors(), ParseSelectorArg(s));
    }
    m->set_match(static_cast<types::SelectorMatch::MatchBehavior>(selector_match));
  }
  if (!x.federates_with.empty()) {
    types::FederatesWithMatch* m = filter->mutable_by_federates_with();
    for (const std::string& td : x.federates_with) {
      SIGIL_ASSIGN_OR_RETURN(std::string name, ParseTrustDomainArg(td));
      m->add_trust_domains(name);
    }
    m->set_match(static_cast<types::FederatesWithMatch::MatchBehavior>(federates_match));
  }
  if (!x.hint.empty()) filter->mutable_by_hint()->set_value(x.hint);
  // Only an explicit -downstream filters; without it every entry counts.
  if (flags.IsSet("downstream")) filter->mutable_by_downstream()->set_value(x.downstream);
  return absl::OkStatus();
}

std::string SelectorKey(const types::Selector& s) { return absl::StrCat(s.type(), ":", s.value()); }

// A stable order for listings: by SPIFFE ID, parent ID, TTLs, then
// selectors (each entry's selectors sorted first).
void SortEntries(google::protobuf::RepeatedPtrField<types::Entry>* entries) {
  for (types::Entry& e : *entries) {
    std::sort(e.mutable_selectors()->begin(), e.mutable_selectors()->end(),
              [](const types::Selector& a, const types::Selector& b) {
                return std::tie(a.type(), a.value()) < std::tie(b.type(), b.value());
              });
  }
  auto key = [](const types::Entry& e) {
    std::vector<std::string> selectors;
    for (const types::Selector& s : e.selectors()) selectors.push_back(SelectorKey(s));
    return std::make_tuple(apitypes::SpiffeIdString(e.spiffe_id()), apitypes::SpiffeIdString(e.parent_id()),
                           e.x509_svid_ttl(), e.jwt_svid_ttl(), selectors, e.id());
  };
  std::sort(entries->begin(), entries->end(),
            [&key](const types::Entry& a, const types::Entry& b) { return key(a) < key(b); });
}

class EntryShowCommand final : public Command {
 public:
  void AddFlags(FlagSet& flags) override {
    flags.String("entryID", &entry_id_, "", "The Entry ID of the records to show");
    AddFilterFlags(flags, &filter_, "show");
  }

  absl::Status Run(const FlagSet& flags, CommandContext& ctx) override {
    entryv1::ListEntriesResponse result;
    if (!entry_id_.empty()) {
      for (const char* other : {"parentID", "spiffeID", "selector", "federatesWith", "hint",
                                "downstream"}) {
        if (flags.IsSet(other)) {
          return absl::InvalidArgumentError("the -entryID flag can't be combined with others");
        }
      }
      entryv1::GetEntryRequest req;
      req.set_id(entry_id_);
      grpc::ClientContext call;
      grpc::Status st = ctx.client().Entry().GetEntry(&call, req, result.add_entries());
      if (!st.ok()) {
        return ctx.client().RpcError(st, absl::StrCat("error fetching entry ID ", entry_id_));
      }
    } else {
      entryv1::ListEntriesRequest req;
      SIGIL_RETURN_IF_ERROR(BuildFilter(filter_, flags, req.mutable_filter()));
      req.set_page_size(kListPageSize);
      SIGIL_RETURN_IF_ERROR(ListAllPages(ctx.client(), ctx.client().Entry(), &entryv1::Entry::Stub::ListEntries, req,
                                         "error fetching entries", [&](entryv1::ListEntriesResponse& page) {
                                           for (types::Entry& e : *page.mutable_entries()) {
                                             *result.add_entries() = std::move(e);
                                           }
                                         }));
    }
    SortEntries(result.mutable_entries());
    if (ctx.json()) {
      ctx.PrintJson(result);
      return absl::OkStatus();
    }
    ctx.out() << "Found " << Pluralize(result.entries_size(), "entry", "entries") << "\n";
    for (const types::Entry& e : result.entries()) PrintEntry(e, ctx.out());
    return absl::OkStatus();
  }

 private:
  std::string entry_id_;
  FilterFlags filter_;
};

class EntryCountCommand final : public Command {
 public:
  void AddFlags(FlagSet& flags) override { AddFilterFlags(flags, &filter_, "count"); }

  absl::Status Run(const FlagSet& flags, CommandContext& ctx) override {
    entryv1::CountEntriesRequest req;
    SIGIL_RETURN_IF_ERROR(BuildFilter(filter_, flags, req.mutable_filter()));
    entryv1::CountEntriesResponse resp;
    grpc::ClientContext call;
    grpc::Status st = ctx.client().Entry().CountEntries(&call, req, &resp);
    if (!st.ok()) return ctx.client().RpcError(st);
    if (ctx.json()) {
      ctx.PrintJson(resp);
    } else {
      ctx.out() << Pluralize(resp.count(), "registration entry", "registration entries") << "\n";
    }
    return absl::OkStatus();
  }

 private:
  FilterFlags filter_;
};

}  // namespace

std::unique_ptr<Command> NewEntryCreateCommand() { return std::make_unique<EntryCreateCommand>(); }
std::unique_ptr<Command> NewEntryUpdateCommand() { return std::make_unique<EntryUpdateCommand>(); }
std::unique_ptr<Command> NewEntryDeleteCommand() { return std::make_unique<EntryDeleteCommand>(); }
std::unique_ptr<Command> NewEntryShowCommand() { return std::make_unique<EntryShowCommand>(); }
std::unique_ptr<Command> NewEntryCountCommand() { return std::make_unique<EntryCountCommand>(); }

}  // namespace sigil::server::cli
