#pragma once

// The SPIFFE Workload API (proto/workload.proto) as sigil-agent serves it.
//
// Every call must carry the metadata `workload.spiffe.io: true`
// (INVALID_ARGUMENT "security header missing from request" otherwise). The
// caller is identified by the credentials of its connection (UnixListener),
// checked to still be the process that connected, and attested into
// selectors; the IdentitySource maps those to identities and bundles.
//
// Streams (FetchX509SVID, FetchX509Bundles, FetchJWTBundles) send the full
// current state when they start and again whenever it changes, never the
// same message twice in a row (the deterministic serialization of each
// response is compared with the last one sent). They use gRPC's callback API,
// so an idle stream holds no thread: the IdentitySource's change callback
// queues a re-read of the workload's view on a small shared worker pool
// (Executor), and writes are issued from there. Attestation also runs on
// that pool, never on gRPC's threads. The unary calls (FetchJWTSVID,
// ValidateJWTSVID) are ordinary synchronous handlers.
//
// No identity. A workload without identities gets PERMISSION_DENIED
// "no identity issued" once the agent has synchronized with the server at
// least once (a stream already running ends with it when its last identity
// is removed, as SPIRE does). Before the first sync an empty view means
// "not known yet", so the call waits for the first sync up to
// first_sync_timeout and, if it still knows nothing then, ends with
// UNAVAILABLE "agent has not synchronized with the server yet", which the
// SPIFFE client libraries retry with backoff.
//
// Logging: each call's method, caller pid, number of selectors and outcome
// at debug level; never keys, tokens or request payloads.

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "attestors/selector.h"
#include "attestors/workload/workload_attestor.h"
#include "common/clock.h"
#include "node-agent/workload_api/executor.h"
#include "node-agent/workload_api/identity_source.h"
#include "node-agent/workload_api/unix_listener.h"
#include "workload.grpc.pb.h"

namespace sigil::agent {

struct WorkloadApiServiceOptions {
  // How long a call from a workload with no identity waits for the agent's
  // first synchronization with the server before it is answered UNAVAILABLE.
  // The first sync normally completes within a second of agent start; 10 s
  // covers a slow server without leaving clients hanging. Default: 10 s.
  absl::Duration first_sync_timeout = absl::Seconds(10);
  // SPIRE's `allow_unauthenticated_verifiers`: workloads without an identity
  // may still stream the agent's trust bundle (FetchX509Bundles,
  // FetchJWTBundles). Default: false.
  bool allow_unauthenticated_verifiers = false;
  // The agent's trust domain name. When set, ValidateJWTSVID returns only
  // the sub, aud and exp claims (plus allowed_foreign_jwt_claims) of tokens
  // from other trust domains, as SPIRE does. Default: "" (all claims).
  std::string trust_domain;
  // SPIRE's `allowed_foreign_jwt_claims`. Default: none.
  std::vector<std::string> allowed_foreign_jwt_claims;
  // Worker threads shared by all streams (attestation, re-reading views,
  // issuing writes). Default: 2.
  int stream_workers = 2;
  // Time for JWT-SVID validation; not owned. Default: RealClock.
  const Clock* clock = nullptr;
};

namespace internal {
template <typename Response>
class PushStream;
class KeyEncodingCache;
}  // namespace internal

class WorkloadApiService final
    : public ::SpiffeWorkloadAPI::WithCallbackMethod_FetchX509SVID<
          ::SpiffeWorkloadAPI::WithCallbackMethod_FetchX509Bundles<
              ::SpiffeWorkloadAPI::WithCallbackMethod_FetchJWTBundles<::SpiffeWorkloadAPI::Service>>> {
 public:
  // None of the pointers is owned; all must outlive the service.
  WorkloadApiService(WorkloadApiServiceOptions options, IdentitySource* source,
                     const attestors::workload::WorkloadAttestorRegistry* attestors,
                     const UnixListener* peers);
  // Stop().
  ~WorkloadApiService() override;

  // Stops the worker pool. Call after the grpc::Server has shut down (which
  // ends every stream). Idempotent.
  void Stop();

  // SpiffeWorkloadAPI (callback streams)
  grpc::ServerWriteReactor<::X509SVIDResponse>* FetchX509SVID(grpc::CallbackServerContext* ctx,
                                                              const ::X509SVIDRequest* request) override;
  grpc::ServerWriteReactor<::X509BundlesResponse>* FetchX509Bundles(
      grpc::CallbackServerContext* ctx, const ::X509BundlesRequest* request) override;
  grpc::ServerWriteReactor<::JWTBundlesResponse>* FetchJWTBundles(
      grpc::CallbackServerContext* ctx, const ::JWTBundlesRequest* request) override;

  // SpiffeWorkloadAPI (synchronous unary calls)
  // INVALID_ARGUMENT without audience ("audience must be specified"), with an
  // empty audience value, or with a malformed spiffe_id; PERMISSION_DENIED
  // when the workload has no identity, or not the requested one;
  // UNAVAILABLE when the server cannot mint.
  grpc::Status FetchJWTSVID(grpc::ServerContext* ctx, const ::JWTSVIDRequest* request,
                            ::JWTSVIDResponse* response) override;
  // INVALID_ARGUMENT without audience or svid, and with the reason when the
  // token does not validate against the agent's bundles at now.
  grpc::Status ValidateJWTSVID(grpc::ServerContext* ctx, const ::ValidateJWTSVIDRequest* request,
                               ::ValidateJWTSVIDResponse* response) override;

 private:
  template <typename Response>
  friend class internal::PushStream;

  struct Caller {
    std::shared_ptr<const PeerCredentials> creds;
    attestors::Selectors selectors;
  };

  // Identifies and attests the caller of a call whose peer string is
  // `peer`; sets `*pid` as soon as the caller's pid is known. INTERNAL when the connection is unknown;
  // PERMISSION_DENIED when the caller's pid is not visible (another pid namespace) or the process that
  // connected has exited (before or during attestation); the attestors' error when attestation fails.
  absl::StatusOr<Caller> Authenticate(const std::string& peer, pid_t* pid) const;

  // Blocks until the view for `selectors` can answer a call (see "No
  // identity" above), or the call is cancelled.
  absl::StatusOr<WorkloadView> WaitForView(const attestors::Selectors& selectors, grpc::ServerContext* ctx,
                                           bool needs_identity) const;

  const WorkloadApiServiceOptions options_;
  IdentitySource* const source_;
  const attestors::workload::WorkloadAttestorRegistry* const attestors_;
  const UnixListener* const peers_;
  const Clock* const clock_;
  // PKCS#8 encodings of SVID keys: OpenSSL 3's encoder costs ~70 us a key,
  // more than the rest of a FetchX509SVID call.
  const std::unique_ptr<internal::KeyEncodingCache> keys_;
  Executor executor_;
};

}  // namespace sigil::agent
