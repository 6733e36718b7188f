#pragma once

// x509pop, agent half (SPIRE's pkg/agent/plugin/nodeattestor/x509pop): sends
// the node's certificate chain and proves possession of its private key by
// signing the server's nonce. Wire format: wire.h.

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "attestors/node/agent_attestor.h"
#include "attestors/node/x509pop/wire.h"
#include "spiffe/crypto/certificate.h"
#include "spiffe/crypto/key.h"

namespace sigil::attestors::node::x509pop {

// Agent plugin configuration (SPIRE's plugin_data keys).
struct AgentConfig {
  // PEM private key of the node certificate: "PRIVATE KEY" (PKCS#8), "EC
  // PRIVATE KEY" or "RSA PRIVATE KEY", unencrypted; EC P-256/P-384/P-521 or
  // RSA (`private_key_path`). Required.
  std::string private_key_path;
  // PEM certificates: the node certificate first, then any intermediates
  // (`certificate_path`). Required.
  std::string certificate_path;
  // PEM intermediates sent after those of certificate_path
  // (`intermediates_path`). Default: none.
  std::string intermediates_path;
};

// The node's chain and key as read from the configured files.
struct NodeCredentials {
  std::vector<crypto::Certificate> chain;  // leaf first
  crypto::PrivateKey key;
};

// Reads and checks the configured files as SPIRE's agent does (Go's
// tls.LoadX509KeyPair, then the intermediates). InvalidArgument, prefixed
// "nodeattestor(x509pop): ", when a required path is empty, a file holds no
// certificate or no usable key, or the key does not match the first
// certificate ("unable to load keypair: ..."); a file that cannot be read
// keeps ReadFile's code (NotFound, PermissionDenied) with the same prefix.
absl::StatusOr<NodeCredentials> LoadNodeCredentials(const AgentConfig& config);

// SPIRE's CalculateResponse: a fresh kNonceSize response nonce and `key`'s
// signature over SignedMessage(challenge nonce, response nonce): RSA keys
// answer the rsa_signature member with RSASSA-PSS over SHA-256 (the longest
// salt the key allows, as Go's crypto/rsa and so SPIRE agents do), EC keys the ecdsa_signature member with ECDSA over SHA-256,
// r and s as minimal big-endian bytes. InvalidArgument "expecting RSA
// challenge" / "expecting ECDSA challenge" when the member for the key's type
// is missing, "invalid challenge nonce" when its nonce is not kNonceSize
// bytes; Internal when signing fails.
absl::StatusOr<Response> CalculateResponse(const crypto::PrivateKey& key, const Challenge& challenge);

class X509PopAgentAttestor final : public AgentAttestor {
 public:
  // Loads the files once to refuse a bad configuration early (errors of
  // LoadNodeCredentials).
  static absl::StatusOr<std::unique_ptr<X509PopAgentAttestor>> Create(AgentConfig config);

  // attestors::node::AgentAttestor
  const std::string& name() const override { return name_; }
  // Re-reads the files, as SPIRE does on every attestation, so a renewed
  // node certificate is picked up for re-attestation, and returns
  // MarshalAttestationData of the chain. The key read with it answers the
  // following challenges. Errors of LoadNodeCredentials.
  absl::StatusOr<std::string> Payload() override;
  // Answers one server challenge (MarshalResponse of CalculateResponse).
  // InvalidArgument prefixed "nodeattestor(x509pop): " when the challenge is
  // not SPIRE's JSON ("unable to unmarshal challenge: ...") or cannot be
  // answered with this key ("failed to calculate challenge response: ...").
  // Thread-safe.
  absl::StatusOr<std::string> Answer(absl::string_view challenge) override;

 private:
  X509PopAgentAttestor(AgentConfig config, NodeCredentials credentials)
      : config_(std::move(config)), credentials_(std::move(credentials)) {}

  const std::string name_ = kPluginName;
  const AgentConfig config_;
  mutable absl::Mutex mu_;
  NodeCredentials credentials_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sigil::attestors::node::x509pop
