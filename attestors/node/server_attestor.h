#pragma once

// The server half of node attestation: verifies the evidence an agent sends
// in AttestAgent and names the agent. Challenges travel over the same stream
// (x509pop signs a nonce, TPM answers a credential activation).

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "attestors/selector.h"
#include "spiffe/id.h"

namespace sigil::attestors::node {

struct AttestResult {
  // spiffe://<td>/spire/agent/<attestor>/<...>
  spiffe::SpiffeId agent_id;
  // Node selectors (matched against node alias entries).
  Selectors selectors;
  // Whether the agent may attest again with fresh evidence once its SVID
  // expires (false for single-use evidence such as join tokens).
  bool can_reattest = false;
};

// Sends a challenge to the agent and returns its answer.
class Challenger {
 public:
  virtual ~Challenger() = default;
  // Unavailable when the agent went away; DeadlineExceeded when it did not
  // answer in time.
  virtual absl::StatusOr<std::string> Challenge(const std::string& challenge) = 0;
};

class ServerAttestor {
 public:
  virtual ~ServerAttestor() = default;
  // SPIRE's plugin name ("join_token", "x509pop").
  virtual const std::string& name() const = 0;
  // Verifies `payload` (AttestationData.payload). Errors are prefixed
  // "nodeattestor(<name>): " and use PermissionDenied for evidence that does
  // not verify, InvalidArgument for malformed payloads. Thread-safe.
  virtual absl::StatusOr<AttestResult> Attest(absl::string_view payload, Challenger* challenger) = 0;
};

// The configured server attestors by name. Immutable once created.
class ServerAttestorRegistry {
 public:
  // InvalidArgument when two attestors share a name.
  static absl::StatusOr<std::unique_ptr<ServerAttestorRegistry>> Create(
      std::vector<std::unique_ptr<ServerAttestor>> attestors);
  // nullptr when no attestor of that name is configured.
  ServerAttestor* Find(absl::string_view name) const;
  std::vector<std::string> Names() const;

 private:
  ServerAttestorRegistry() = default;
  std::map<std::string, std::unique_ptr<ServerAttestor>, std::less<>> attestors_;
};

}  // namespace sigil::attestors::node
