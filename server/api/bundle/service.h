#pragma once

// The Bundle service of SPIRE's server API (spire.api.server.bundle.v1): the
// server's own trust bundle and the stored bundles of federated trust
// domains.
//
// Authorization: GetBundle is open to anyone (agents and workloads bootstrap
// trust with it); GetFederatedBundle to local callers, admins and agents;
// everything else to local callers and admins. PublishJWTAuthority
// (downstream servers) is not overridden here and answers UNIMPLEMENTED.
//
// Validation of bundles given by callers: the trust domain is a valid name
// (and, for federated bundles, not this server's own), every X.509
// authority is a DER certificate, every JWT authority has a key ID and a DER
// SubjectPublicKeyInfo public key, refresh_hint is not negative. Refusals
// are INVALID_ARGUMENT naming the field ("invalid x509_authorities[1]:
// ..."); in batch calls they are that item's status.

#include <grpcpp/grpcpp.h>

#include "common/clock.h"
#include "server/api/auth.h"
#include "server/store/store.h"
#include "spiffe/id.h"
#include "spire/api/server/bundle/v1/bundle.grpc.pb.h"

namespace sigil::server::api {

// `bundle` with only the fields selected by `mask` (nullptr: all of them);
// trust_domain is always kept.
spire::api::types::Bundle ApplyBundleMask(const spire::api::types::Bundle& bundle,
                                          const spire::api::types::BundleMask* mask);

class BundleService : public spire::api::server::bundle::v1::Bundle::Service {
 public:
  // The pointers must outlive the service.
  BundleService(Store* store, Authenticator* authn, const Clock* clock, spiffe::TrustDomain td);

  // spire.api.server.bundle.v1.Bundle
  grpc::Status CountBundles(grpc::ServerContext* ctx,
                            const spire::api::server::bundle::v1::CountBundlesRequest* req,
                            spire::api::server::bundle::v1::CountBundlesResponse* resp) override;
  grpc::Status GetBundle(grpc::ServerContext* ctx,
                         const spire::api::server::bundle::v1::GetBundleRequest* req,
                         spire::api::types::Bundle* resp) override;
  grpc::Status AppendBundle(grpc::ServerContext* ctx,
                            const spire::api::server::bundle::v1::AppendBundleRequest* req,
                            spire::api::types::Bundle* resp) override;
  grpc::Status ListFederatedBundles(
      grpc::ServerContext* ctx, const spire::api::server::bundle::v1::ListFederatedBundlesRequest* req,
      spire::api::server::bundle::v1::ListFederatedBundlesResponse* resp) override;
  grpc::Status GetFederatedBundle(
      grpc::ServerContext* ctx, const spire::api::server::bundle::v1::GetFederatedBundleRequest* req,
      spire::api::types::Bundle* resp) override;
  grpc::Status BatchCreateFederatedBundle(
      grpc::ServerContext* ctx,
      const spire::api::server::bundle::v1::BatchCreateFederatedBundleRequest* req,
      spire::api::server::bundle::v1::BatchCreateFederatedBundleResponse* resp) override;
  grpc::Status BatchUpdateFederatedBundle(
      grpc::ServerContext* ctx,
      const spire::api::server::bundle::v1::BatchUpdateFederatedBundleRequest* req,
      spire::api::server::bundle::v1::BatchUpdateFederatedBundleResponse* resp) override;
  grpc::Status BatchSetFederatedBundle(
      grpc::ServerContext* ctx,
      const spire::api::server::bundle::v1::BatchSetFederatedBundleRequest* req,
      spire::api::server::bundle::v1::BatchSetFederatedBundleResponse* resp) override;
  grpc::Status BatchDeleteFederatedBundle(
      grpc::ServerContext* ctx,
      const spire::api::server::bundle::v1::BatchDeleteFederatedBundleRequest* req,
      spire::api::server::bundle::v1::BatchDeleteFederatedBundleResponse* resp) override;

 protected:
  // Validates a federated bundle's trust domain and the fields selected by
  // `mask` (nullptr: all); returns it with the trust domain as a name.
  absl::StatusOr<spire::api::types::Bundle> ValidateFederatedBundle(
      const spire::api::types::Bundle& bundle, const spire::api::types::BundleMask* mask) const;
  // A federated trust domain name: valid and not this server's own.
  // `action` completes "... for the server's own trust domain is not
  // allowed".
  absl::StatusOr<std::string> FederatedTrustDomain(absl::string_view td,
                                                   absl::string_view action) const;

  Store* const store_;
  Authenticator* const authn_;
  const Clock* const clock_;
  const spiffe::TrustDomain td_;
};

}  // namespace sigil::server::api
