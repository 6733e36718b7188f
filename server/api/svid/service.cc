#include "server/api/svid/service.h"

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "apitypes/convert.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"
#include "spiffe/crypto/csr.h"
#include "spiffe/crypto/encoding.h"

namespace sigil::server::api {
namespace {

namespace svidv1 = spire::api::server::svid::v1;
using apitypes::SpiffeIdToProto;
using apitypes::StatusToProto;
using spire::api::types::X509SVID;

// Batches bigger than this are refused rather than tying up a signing thread.
constexpr int kMaxBatch = 1000;

void FillX509Svid(const spiffe::SpiffeId& id, const ca::MintedX509Svid& minted, X509SVID* out) {
  *out->mutable_id() = SpiffeIdToProto(id);
  for (const auto& der : minted.chain_der) out->add_cert_chain(der);
  out->set_expires_at(absl::ToUnixSeconds(minted.not_after));
}

void FillJwtSvid(const spiffe::SpiffeId& id, const ca::MintedJwtSvid& minted, spire::api::types::JWTSVID* out) {
  out->set_token(minted.token);
  *out->mutable_id() = SpiffeIdToProto(id);
  out->set_expires_at(absl::ToUnixSeconds(minted.expires_at));
  out->set_issued_at(absl::ToUnixSeconds(minted.issued_at));
}

// The SPIFFE ID in `id`; InvalidArgument "invalid <field>: <reason>".
absl::StatusOr<spiffe::SpiffeId> IdField(const spire::api::types::SPIFFEID& id, absl::string_view field) {
  absl::StatusOr<spiffe::SpiffeId> parsed = apitypes::SpiffeIdFromProto(id);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("invalid ", field, ": ", parsed.status().message()));
  }
  return parsed;
}

absl::StatusOr<absl::Duration> TtlFromRequest(int32_t ttl) {
  if (ttl < 0) return absl::InvalidArgumentError("ttl must not be negative");
  return absl::Seconds(ttl);
}

// The entries the calling agent is authorized for, by id.
using AuthorizedSet = std::map<std::string, EntryPtr>;

AuthorizedSet AuthorizedFor(EntryIndex* index, const Caller& caller) {
  AuthorizedSet out;
  for (EntryPtr& e : index->AuthorizedEntries(*caller.id)) out.emplace(e->id(), std::move(e));
  return out;
}

absl::StatusOr<EntryPtr> FindAuthorized(const AuthorizedSet& authorized, const std::string& entry_id) {
  if (entry_id.empty()) return absl::InvalidArgumentError("missing entry ID");
  auto it = authorized.find(entry_id);
  if (it == authorized.end()) {
    return absl::NotFoundError(absl::StrCat("entry \"", entry_id, "\" not found or not authorized for this agent"));
  }
  return it->second;
}

}  // namespace

grpc::Status SvidService::MintX509SVID(grpc::ServerContext* ctx, const svidv1::MintX509SVIDRequest* req,
                                       svidv1::MintX509SVIDResponse* resp) {
  auto caller = Authenticate(authn_, *ctx, kAllowLocal | kAllowAdmin, "MintX509SVID");
  if (!caller.ok()) return ToGrpc(caller.status());
  if (req->csr().empty()) return ToGrpc(absl::InvalidArgumentError("missing CSR"));
  auto csr = crypto::CertificateRequest::FromDer(req->csr());
  if (!csr.ok()) return ToGrpc(absl::InvalidArgumentError(absl::StrCat("invalid CSR: ", csr.status().message())));
  if (csr->uri_sans().size() != 1) {
    return ToGrpc(absl::InvalidArgumentError(
        absl::StrCat("invalid CSR: exactly one URI SAN is required, found ", csr->uri_sans().size())));
  }
  auto id = spiffe::SpiffeId::FromString(csr->uri_sans()[0]);
  if (!id.ok()) {
    return ToGrpc(absl::InvalidArgumentError(absl::StrCat("invalid CSR: URI SAN: ", id.status().message())));
  }
  auto ttl = TtlFromRequest(req->ttl());
  if (!ttl.ok()) return ToGrpc(ttl.status());
  ca::X509SvidParams params(csr->spki_der(), *id);
  params.ttl = *ttl;
  params.dns_sans = csr->dns_sans();
  auto minted = ca_->MintX509SvidDer(params);
  if (!minted.ok()) return ToGrpc(minted.status());
  FillX509Svid(*id, *minted, resp->mutable_svid());
  spdlog::info("minted X509-SVID {} (serial {}) for {}", id->ToString(), crypto::HexEncode(minted->serial),
               caller->Describe());
  return grpc::Status::OK;
}

grpc::Status SvidService::MintJWTSVID(grpc::ServerContext* ctx, const svidv1::MintJWTSVIDRequest* req,
                                      svidv1::MintJWTSVIDResponse* resp) {
  auto caller = Authenticate(authn_, *ctx, kAllowLocal | kAllowAdmin, "MintJWTSVID");
  if (!caller.ok()) return ToGrpc(caller.status());
  auto id = IdField(req->id(), "SPIFFE ID");
  if (!id.ok()) return ToGrpc(id.status());
  auto ttl = TtlFromRequest(req->ttl());
  if (!ttl.ok()) return ToGrpc(ttl.status());
  ca::JwtSvidParams params(*id, {req->audience().begin(), req->audience().end()}, *ttl);
  auto jwt = ca_->MintJwtSvid(params);
  if (!jwt.ok()) return ToGrpc(jwt.status());
  FillJwtSvid(*id, *jwt, resp->mutable_svid());
  spdlog::info("minted JWT-SVID {} for {}", id->ToString(), caller->Describe());
  return grpc::Status::OK;
}

grpc::Status SvidService::BatchNewX509SVID(grpc::ServerContext* ctx, const svidv1::BatchNewX509SVIDRequest* req,
                                           svidv1::BatchNewX509SVIDResponse* resp) {
  auto caller = Authenticate(authn_, *ctx, kAllowAgent, "BatchNewX509SVID");
  if (!caller.ok()) return ToGrpc(caller.status());
  if (req->params_size() == 0) return ToGrpc(absl::InvalidArgumentError("missing parameters"));
  if (req->params_size() > kMaxBatch) {
    return ToGrpc(absl::InvalidArgumentError(absl::StrCat("too many parameters: ", req->params_size(),
                                                          " (at most ", kMaxBatch, " per call)")));
  }
  const AuthorizedSet authorized = AuthorizedFor(index_, *caller);
  for (const auto& p : req->params()) {
    auto* result = resp->add_results();
    auto mint = [&]() -> absl::Status {
      SIGIL_ASSIGN_OR_RETURN(EntryPtr entry, FindAuthorized(authorized, p.entry_id()));
      if (p.csr().empty()) return absl::InvalidArgumentError("missing CSR");
      SIGIL_ASSIGN_OR_RETURN(auto csr, crypto::CertificateRequest::FromDer(p.csr()));
      SIGIL_ASSIGN_OR_RETURN(auto id, IdField(entry->spiffe_id(), "entry SPIFFE ID"));
      ca::X509SvidParams params(csr.spki_der(), id);
      params.ttl = absl::Seconds(entry->x509_svid_ttl());
      params.dns_sans.assign(entry->dns_names().begin(), entry->dns_names().end());
      SIGIL_ASSIGN_OR_RETURN(ca::MintedX509Svid minted, ca_->MintX509SvidDer(params));
      FillX509Svid(id, minted, result->mutable_svid());
      result->mutable_svid()->set_hint(entry->hint());
      return absl::OkStatus();
    };
    *result->mutable_status() = StatusToProto(mint());
  }
  return grpc::Status::OK;
}

grpc::Status SvidService::NewJWTSVID(grpc::ServerContext* ctx, const svidv1::NewJWTSVIDRequest* req,
                                     svidv1::NewJWTSVIDResponse* resp) {
  auto caller = Authenticate(authn_, *ctx, kAllowAgent, "NewJWTSVID");
  if (!caller.ok()) return ToGrpc(caller.status());
  auto entry = FindAuthorized(AuthorizedFor(index_, *caller), req->entry_id());
  if (!entry.ok()) return ToGrpc(entry.status());
  auto id = IdField((*entry)->spiffe_id(), "entry SPIFFE ID");
  if (!id.ok()) return ToGrpc(id.status());
  ca::JwtSvidParams params(*id, {req->audience().begin(), req->audience().end()},
                           absl::Seconds((*entry)->jwt_svid_ttl()));
  auto jwt = ca_->MintJwtSvid(params);
  if (!jwt.ok()) return ToGrpc(jwt.status());
  FillJwtSvid(*id, *jwt, resp->mutable_svid());
  resp->mutable_svid()->set_hint((*entry)->hint());
  return grpc::Status::OK;
}

}  // namespace sigil::server::api
