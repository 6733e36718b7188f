#include "server/api/entry/service.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "apitypes/convert.h"
#include "server/store/entry_validation.h"

namespace sigil::server::api {
namespace {

namespace types = ::spire::api::types;
namespace v1 = ::spire::api::server::entry::v1;

constexpr uint32_t kAdmin = kAllowLocal | kAllowAdmin;

absl::Status FilterError(absl::string_view field, absl::string_view reason) {
  return absl::InvalidArgumentError(absl::StrCat("invalid filter ", field, ": ", reason));
}

// CountEntriesRequest.Filter and ListEntriesRequest.Filter have the same
// fields but are distinct message types.
template <typename Filter>
absl::StatusOr<EntryFilter> ToStoreFilter(const Filter& in) {
  EntryFilter out;
  if (in.has_by_spiffe_id()) {
    absl::StatusOr<spiffe::SpiffeId> id = apitypes::SpiffeIdFromProto(in.by_spiffe_id());
    if (!id.ok()) return FilterError("by_spiffe_id", id.status().message());
    out.by_spiffe_id = id->ToString();
  }
  if (in.has_by_parent_id()) {
    absl::StatusOr<spiffe::SpiffeId> id = apitypes::SpiffeIdFromProto(in.by_parent_id());
    if (!id.ok()) return FilterError("by_parent_id", id.status().message());
    out.by_parent_id = id->ToString();
  }
  if (in.has_by_selectors()) {
    if (in.by_selectors().selectors().empty()) {
      return FilterError("by_selectors", "empty selector set");
    }
    if (!types::SelectorMatch::MatchBehavior_IsValid(in.by_selectors().match())) {
      return FilterError("by_selectors",
                         absl::StrCat("unknown match behavior ", in.by_selectors().match()));
    }
    for (const types::Selector& s : in.by_selectors().selectors()) {
      absl::Status valid = ValidateSelector(s);
      if (!valid.ok()) return FilterError("by_selectors", valid.message());
    }
    out.by_selectors = in.by_selectors();
  }
  if (in.has_by_federates_with()) {
    if (in.by_federates_with().trust_domains().empty()) {
      return FilterError("by_federates_with", "empty trust domain set");
    }
    if (!types::FederatesWithMatch::MatchBehavior_IsValid(in.by_federates_with().match())) {
      return FilterError("by_federates_with",
                         absl::StrCat("unknown match behavior ", in.by_federates_with().match()));
    }
    types::FederatesWithMatch match;
    match.set_match(in.by_federates_with().match());
    for (const std::string& td : in.by_federates_with().trust_domains()) {
      absl::StatusOr<spiffe::TrustDomain> parsed = apitypes::ParseTrustDomain(td);
      if (!parsed.ok()) return FilterError("by_federates_with", parsed.status().message());
      match.add_trust_domains(parsed->name());
    }
    out.by_federates_with = std::move(match);
  }
  if (in.has_by_hint()) out.by_hint = in.by_hint().value();
  if (in.has_by_downstream()) out.by_downstream = in.by_downstream().value();
  return out;
}

}  // namespace

types::Entry ApplyEntryMask(const types::Entry& entry, const types::EntryMask* mask) {
  if (mask == nullptr) return entry;
  types::Entry out;
  out.set_id(entry.id());
  if (mask->spiffe_id()) *out.mutable_spiffe_id() = entry.spiffe_id();
  if (mask->parent_id()) *out.mutable_parent_id() = entry.parent_id();
  if (mask->selectors()) *out.mutable_selectors() = entry.selectors();
  if (mask->x509_svid_ttl()) out.set_x509_svid_ttl(entry.x509_svid_ttl());
  if (mask->federates_with()) *out.mutable_federates_with() = entry.federates_with();
  if (mask->admin()) out.set_admin(entry.admin());
  if (mask->downstream()) out.set_downstream(entry.downstream());
  if (mask->expires_at()) out.set_expires_at(entry.expires_at());
  if (mask->dns_names()) *out.mutable_dns_names() = entry.dns_names();
  if (mask->revision_number()) out.set_revision_number(entry.revision_number());
  if (mask->store_svid()) out.set_store_svid(entry.store_svid());
  if (mask->jwt_svid_ttl()) out.set_jwt_svid_ttl(entry.jwt_svid_ttl());
  if (mask->hint()) out.set_hint(entry.hint());
  if (mask->created_at()) out.set_created_at(entry.created_at());
  return out;
}

EntryService::EntryService(Store* store, Authenticator* authn, const Clock* clock,
                           spiffe::TrustDomain td)
    : store_(store), authn_(authn), clock_(clock), td_(std::move(td)) {}

grpc::Status EntryService::CountEntries(grpc::ServerContext* ctx,
                                        const v1::CountEntriesRequest* req,
                                        v1::CountEntriesResponse* resp) {
  absl::StatusOr<Caller> caller = Authenticate(authn_, *ctx, kAdmin, "Entry.CountEntries");
  if (!caller.ok()) return ToGrpc(caller.status());
  absl::StatusOr<EntryFilter> filter = ToStoreFilter(req->filter());
  if (!filter.ok()) return ToGrpc(filter.status());
  absl::StatusOr<int64_t> count = store_->CountEntries(*filter);
  if (!count.ok()) return ToGrpc(count.status());
  resp->set_count(static_cast<int32_t>(*count));
  return grpc::Status::OK;
}

grpc::Status EntryService::ListEntries(grpc::ServerContext* ctx, const v1::ListEntriesRequest* req,
                                       v1::ListEntriesResponse* resp) {
  absl::StatusOr<Caller> caller = Authenticate(authn_, *ctx, kAdmin, "Entry.ListEntries");
  if (!caller.ok()) return ToGrpc(caller.status());
  absl::StatusOr<EntryFilter> filter = ToStoreFilter(req->filter());
  if (!filter.ok()) return ToGrpc(filter.status());
  absl::StatusOr<EntryPage> page = store_->ListEntries(*filter, req->page_size(), req->page_token());
  if (!page.ok()) return ToGrpc(page.status());
  const types::EntryMask* mask = req->has_output_mask() ? &req->output_mask() : nullptr;
  for (const types::Entry& e : page->entries) *resp->add_entries() = ApplyEntryMask(e, mask);
  resp->set_next_page_token(page->next_page_token);
  return grpc::Status::OK;
}

grpc::Status EntryService::GetEntry(grpc::ServerContext* ctx, const v1::GetEntryRequest* req,
                                    types::Entry* resp) {
  absl::StatusOr<Caller> caller = Authenticate(authn_, *ctx, kAdmin, "Entry.GetEntry");
  if (!caller.ok()) return ToGrpc(caller.status());
  if (req->id().empty()) return ToGrpc(absl::InvalidArgumentError("missing ID"));
  absl::StatusOr<types::Entry> entry = store_->GetEntry(req->id());
  if (entry.status().code() == absl::StatusCode::kNotFound) {
    return ToGrpc(absl::NotFoundError("entry not found"));
  }
  if (!entry.ok()) return ToGrpc(entry.status());
  *resp = ApplyEntryMask(*entry, req->has_output_mask() ? &req->output_mask() : nullptr);
  return grpc::Status::OK;
}

grpc::Status EntryService::BatchCreateEntry(grpc::ServerContext* ctx,
                                            const v1::BatchCreateEntryRequest* req,
                                            v1::BatchCreateEntryResponse* resp) {
  absl::StatusOr<Caller> caller = Authenticate(authn_, *ctx, kAdmin, "Entry.BatchCreateEntry");
  if (!caller.ok()) return ToGrpc(caller.status());
  const types::EntryMask* mask = req->has_output_mask() ? &req->output_mask() : nullptr;
  for (const types::Entry& requested : req->entries()) {
    v1::BatchCreateEntryResponse::Result* result = resp->add_results();
    absl::StatusOr<types::Entry> valid = ValidateEntry(requested, td_, nullptr);
    if (!valid.ok()) {
      *result->mutable_status() = apitypes::StatusToProto(valid.status());
      continue;
    }
    absl::StatusOr<CreateEntryResult> created = store_->CreateEntry(*valid);
    if (!created.ok()) {
      *result->mutable_status() = apitypes::StatusToProto(created.status());
      continue;
    }
    *result->mutable_status() = apitypes::StatusToProto(
        created->created ? absl::OkStatus()
                         : absl::AlreadyExistsError("similar entry already exists"));
    *result->mutable_entry() = ApplyEntryMask(created->entry, mask);
  }
  return grpc::Status::OK;
}

grpc::Status EntryService::BatchUpdateEntry(grpc::ServerContext* ctx,
                                            const v1::BatchUpdateEntryRequest* req,
                                            v1::BatchUpdateEntryResponse* resp) {
  absl::StatusOr<Caller> caller = Authenticate(authn_, *ctx, kAdmin, "Entry.BatchUpdateEntry");
  if (!caller.ok()) return ToGrpc(caller.status());
  const types::EntryMask* input = req->has_input_mask() ? &req->input_mask() : nullptr;
  const types::EntryMask* output = req->has_output_mask() ? &req->output_mask() : nullptr;
  for (const types::Entry& requested : req->entries()) {
    v1::BatchUpdateEntryResponse::Result* result = resp->add_results();
    if (requested.id().empty()) {
      *result->mutable_status() =
          apitypes::StatusToProto(absl::InvalidArgumentError("invalid id: missing"));
      continue;
    }
    absl::StatusOr<types::Entry> valid = ValidateEntry(requested, td_, input);
    if (!valid.ok()) {
      *result->mutable_status() = apitypes::StatusToProto(valid.status());
      continue;
    }
    absl::StatusOr<types::Entry> updated = store_->UpdateEntry(*valid, input);
    if (updated.status().code() == absl::StatusCode::kNotFound) {
      *result->mutable_status() = apitypes::StatusToProto(absl::NotFoundError("entry not found"));
      continue;
    }
    if (!updated.ok()) {
      *result->mutable_status() = apitypes::StatusToProto(updated.status());
      continue;
    }
    *result->mutable_status() = apitypes::StatusToProto(absl::OkStatus());
    *result->mutable_entry() = ApplyEntryMask(*updated, output);
  }
  return grpc::Status::OK;
}

grpc::Status EntryService::BatchDeleteEntry(grpc::ServerContext* ctx,
                                            const v1::BatchDeleteEntryRequest* req,
                                            v1::BatchDeleteEntryResponse* resp) {
  absl::StatusOr<Caller> caller = Authenticate(authn_, *ctx, kAdmin, "Entry.BatchDeleteEntry");
  if (!caller.ok()) return ToGrpc(caller.status());
  for (const std::string& id : req->ids()) {
    v1::BatchDeleteEntryResponse::Result* result = resp->add_results();
    result->set_id(id);
    if (id.empty()) {
      *result->mutable_status() =
          apitypes::StatusToProto(absl::InvalidArgumentError("missing entry ID"));
      continue;
    }
    absl::StatusOr<types::Entry> deleted = store_->DeleteEntry(id);
    if (deleted.status().code() == absl::StatusCode::kNotFound) {
      *result->mutable_status() = apitypes::StatusToProto(absl::NotFoundError("entry not found"));
      continue;
    }
    *result->mutable_status() = apitypes::StatusToProto(deleted.status());
  }
  return grpc::Status::OK;
}

}  // namespace sigil::server::api
