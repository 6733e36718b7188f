#pragma once

// Test-only: an in-process stand-in for sigil-server, serving the RPCs the
// agent uses (AttestAgent with join_token and a challenge-response type,
// RenewAgent, GetBundle, BatchNewX509SVID, NewJWTSVID, WatchAuthorized) on
// a real grpc::Server over loopback TLS, with a PKI the test owns. Agents
// are authenticated per call from their client certificate as sigil-server
// does: the chain must verify against the bundle, and its serial must be
// the agent's active one (a renewed SVID becomes the only active one on
// first use). Thread-safe.

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "node-agent/test_util.h"
#include "spiffe/bundle.h"
#include "spire/api/types/entry.pb.h"

namespace sigil::agent::testing {

struct FakeServerOptions {
  std::string trust_domain = "example.org";
  const Clock* clock = nullptr;
  absl::Duration agent_ttl = absl::Hours(1);
  absl::Duration x509_ttl = absl::Hours(1);
  absl::Duration jwt_ttl = absl::Minutes(5);
  // How far before "now" minted SVIDs start (as CAs do against clock skew).
  absl::Duration backdate = absl::Seconds(10);
};

class FakeServer {
 public:
  explicit FakeServer(FakeServerOptions options);
  ~FakeServer();

  // Listens on 127.0.0.1:`port` (0: any free port; the port is kept for a
  // restart with Start(port())). Internal when the port cannot be bound.
  absl::Status Start(int port = 0);
  // Ends every stream and stops listening. Idempotent.
  void Stop();
  int port() const { return port_; }
  std::string target() const;

  // The trust bundle (the root), as the agent should be configured with it.
  spiffe::Bundle Bundle() const;
  std::string BundlePem() const;
  const TestCa& root() const { return root_; }
  // Makes the server present `chain` (leaf first) / `key` instead of its
  // own SVID; takes effect at the next Start().
  void SetServerIdentity(std::vector<crypto::Certificate> chain, crypto::PrivateKey key);

  void AddJoinToken(const std::string& token);
  // Tokens stay valid after use (to let a test re-attest with one).
  void SetTokensReusable(bool reusable);
  // Removes the agent's record (all agents when `agent_id` is empty): its
  // SVID is refused from then on and its sync stream ends with
  // PERMISSION_DENIED.
  void EvictAgent(const std::string& agent_id = "");
  void BanAgent(const std::string& agent_id);

  // Entries authorized for every agent, pushed to open sync streams.
  void UpsertEntry(const spire::api::types::Entry& entry);
  void RemoveEntry(const std::string& id);
  // Signs X509-SVIDs with a new intermediate CA from now on.
  void RotateSigningCa();
  // Marks the root tainted in the bundle sent to agents.
  void TaintRoot();

  int attest_calls() const;
  int renew_calls() const;
  int batch_calls() const;
  int jwt_calls() const;
  int sync_streams() const;
  // Serial (decimal) of the SVID the agent last called with.
  std::string last_caller_serial() const;
  std::string active_serial(const std::string& agent_id) const;
  std::vector<std::string> agent_ids() const;

  class Impl;

 private:
  FakeServerOptions options_;
  TestCa root_;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace sigil::agent::testing
