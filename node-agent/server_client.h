#pragma once

// sigil-agent's connection to sigil-server: TLS channels on which the server
// must prove it is spiffe://<td>/spire/server, and on which the agent proves
// its own identity with its agent X509-SVID.
//
// Server verification. gRPC's own certificate check knows nothing of SPIFFE
// (it would want a host name in the certificate), so it is switched off
// (verify_server_certs = false, check_call_host = false) and replaced by a
// custom verifier (ServerCertificateVerifier) that gRPC runs on every TLS
// handshake: the chain the server presents must verify, as an X509-SVID,
// against the agent's CURRENT trust bundle (it follows CA rotation), and its
// SPIFFE ID must be spiffe://<td>/spire/server. With insecure_bootstrap and
// no bundle known yet, any server is accepted with a loud warning on every
// connection; once a bundle is known it is always used.
//
// Client identity. AttestAgent is called without a client certificate;
// every other call presents the agent SVID set with SetIdentity, which
// builds a new channel (each channel has its own subchannel pool, so the new
// certificate is used on a new TLS connection; calls in flight keep theirs).

#include <atomic>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <grpcpp/channel.h>
#include <grpcpp/support/status.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "attestors/node/agent_attestor.h"
#include "common/clock.h"
#include "node-agent/server_api.h"
#include "sigil/agent/v1/sync.grpc.pb.h"
#include "spiffe/bundle.h"
#include "spiffe/id.h"
#include "spiffe/x509svid.h"

namespace sigil::agent {

// The bundle the server is verified against, read at every handshake; may
// return nullptr when none is known yet.
using BundleGetter = std::function<std::shared_ptr<const spiffe::Bundle>()>;

// The check ServerCertificateVerifier applies, on its own for tests: `chain`
// (PEM, leaf first) must verify against `bundle` at `now` and its leaf must
// be spiffe://<td>/spire/server. Unauthenticated naming what is wrong
// ("server presented spiffe://x/y, expected ...", the verification error);
// FailedPrecondition when `bundle` is null.
absl::Status VerifyServerChain(const std::string& chain_pem, const spiffe::Bundle* bundle,
                               const spiffe::TrustDomain& td, absl::Time now);

struct ServerClientOptions {
  // "host:port" of the server.
  std::string target;
  spiffe::TrustDomain trust_domain;
  // Accept any server while no bundle is known (see the file comment).
  bool insecure_bootstrap = false;
  // Time for certificate checks; not owned. Must be set.
  const Clock* clock = nullptr;
  // Deadline of each unary call and of the whole AttestAgent exchange.
  // Default: 30 s.
  absl::Duration rpc_timeout = absl::Seconds(30);
  // Upper bound of gRPC's own reconnection backoff. Default: 30 s.
  absl::Duration max_reconnect_backoff = absl::Seconds(30);

  explicit ServerClientOptions(spiffe::TrustDomain td) : trust_domain(std::move(td)) {}
};

struct AttestationResult {
  spiffe::SpiffeId agent_id;
  std::vector<crypto::Certificate> chain;
  bool reattestable = false;
};

class ServerClient final : public ServerApi {
 public:
  // InvalidArgument when the target is empty or the clock is missing.
  static absl::StatusOr<std::unique_ptr<ServerClient>> Create(ServerClientOptions options, BundleGetter bundle);
  ~ServerClient() override;

  // Presents `svid` on every later call (a new channel is built).
  void SetIdentity(const spiffe::X509Svid& svid);
  // Calls without a client certificate from now on.
  void ClearIdentity();
  bool has_identity() const;

  // Called (from the calling thread) whenever an authenticated call fails
  // with PERMISSION_DENIED: the server no longer accepts the agent's
  // identity (evicted, banned, SVID no longer active). Set before use.
  void SetOnIdentityRefused(std::function<void(const absl::Status&)> callback);

  // AgentService.AttestAgent without a client certificate: sends the
  // attestor's payload and `csr_der`, answers challenges, returns the agent
  // SVID chain. The server's status on refusal (PermissionDenied for a
  // banned agent, InvalidArgument / PermissionDenied for bad evidence such
  // as a used join token); the attestor's error when it cannot answer;
  // InvalidArgument when the returned SVID is malformed or not an agent ID
  // of this trust domain.
  absl::StatusOr<AttestationResult> AttestAgent(attestors::node::AgentAttestor* attestor, const std::string& csr_der);
  // AgentService.RenewAgent: a new agent SVID chain for `csr_der`.
  absl::StatusOr<std::vector<crypto::Certificate>> RenewAgent(const std::string& csr_der);
  // BundleService.GetBundle: the trust domain's bundle.
  absl::StatusOr<spiffe::Bundle> GetBundle();

  // ServerApi
  absl::StatusOr<std::vector<X509SvidResult>> BatchNewX509Svid(const std::vector<X509SvidRequest>& requests) override;
  absl::StatusOr<MintedJwtSvid> NewJwtSvid(const std::string& entry_id,
                                           const std::vector<std::string>& audience) override;

  // A stub on the current authenticated channel, for the sync stream.
  std::unique_ptr<sigil::agent::v1::AgentSync::Stub> SyncStub();
  // Converts the final status of an authenticated call, reporting
  // PERMISSION_DENIED to the identity-refused callback; `rpc` names the call
  // in the message. When the TLS handshake failed because the server could
  // not be verified, the message says why.
  absl::Status CheckStatus(const grpc::Status& status, const char* rpc);

  // Cancels every call in flight and makes later calls fail at once with
  // CANCELLED (shutdown). Irreversible.
  void CancelAll();
  // Registers a call's context so CancelAll() reaches it; false (and the
  // context is cancelled) after CancelAll(). Pair with Unregister().
  bool Register(grpc::ClientContext* ctx);
  void Unregister(grpc::ClientContext* ctx);

  // Handshakes the verifier accepted / refused so far (diagnostics, tests).
  int64_t servers_verified() const;
  int64_t servers_refused() const;

  struct VerifierState;

 private:
  explicit ServerClient(ServerClientOptions options, BundleGetter bundle);
  std::shared_ptr<grpc::Channel> MakeChannel(const spiffe::X509Svid* identity) const;
  std::shared_ptr<grpc::Channel> AuthenticatedChannel() const;
  absl::Status ToStatus(const grpc::Status& status, const char* rpc) const;
  void SetDeadline(grpc::ClientContext* ctx) const;

  const ServerClientOptions options_;
  std::shared_ptr<VerifierState> verifier_state_;
  mutable absl::Mutex mu_;
  std::shared_ptr<grpc::Channel> channel_ ABSL_GUARDED_BY(mu_);
  bool has_identity_ ABSL_GUARDED_BY(mu_) = false;
  std::function<void(const absl::Status&)> on_refused_ ABSL_GUARDED_BY(mu_);
  absl::Mutex calls_mu_;
  std::set<grpc::ClientContext*> calls_ ABSL_GUARDED_BY(calls_mu_);
  bool cancelled_ ABSL_GUARDED_BY(calls_mu_) = false;
};

}  // namespace sigil::agent
