#pragma once

// x509pop, server half (SPIRE's pkg/server/plugin/nodeattestor/x509pop, mode
// "external_pki"): the agent presents a certificate chain; the server
// verifies it to the configured CA bundle(s) at the current time, challenges
// the agent to sign a fresh nonce with the leaf's key, verifies the answer
// with the leaf's public key, and names the agent
//   spiffe://<td>/spire/agent/x509pop/<SHA-1 of the leaf DER, hex>
// (or what `agent_path_template` makes of the leaf), with the selectors
//   x509pop:subject:cn:<leaf CN>          when the CN is not empty
//   x509pop:ca:fingerprint:<SHA-1 hex>    for each certificate of the
//                                         verified path above the leaf
//   x509pop:serialnumber:<hex>            the leaf serial, whole bytes
//   x509pop:san:<key>:<value>             for each leaf URI SAN
//                                         x509pop://<td>/<key>/<value>
// in that order (SAN selectors sorted by key). The evidence can be presented
// again, so agents may re-attest. Wire format: wire.h.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "attestors/node/server_attestor.h"
#include "attestors/node/x509pop/wire.h"
#include "common/clock.h"
#include "spiffe/crypto/certificate.h"
#include "spiffe/crypto/key.h"
#include "spiffe/id.h"

namespace sigil::attestors::node::x509pop {

// SPIRE's default agent_path_template (relative to /spire/agent).
inline constexpr char kDefaultAgentPathTemplate[] = "/{{ .PluginName }}/{{ .Fingerprint }}";

// At most this many certificates may follow the leaf in a payload; bounds
// the work an unauthenticated caller can ask for. Sigil's limit.
inline constexpr size_t kMaxIntermediates = 16;

// What an agent path template can refer to, taken from the verified leaf.
struct AgentPathValues {
  std::string plugin_name;          // .PluginName ("x509pop")
  std::string fingerprint;          // .Fingerprint
  std::string trust_domain;         // .TrustDomain (the name, "example.org")
  std::string serial_number_hex;    // .SerialNumberHex
  std::string subject_common_name;  // .Subject.CommonName
  // .URISanSelectors.<key>: from x509pop://<td>/<key>/<value> URI SANs.
  std::map<std::string, std::string> uri_san_selectors;
};

// SPIRE's agent_path_template: Go text/template syntax, of which Sigil
// accepts literal text and field placeholders `{{ .Name }}` (spaces inside
// the braces optional) naming one of .PluginName, .Fingerprint,
// .TrustDomain, .SerialNumberHex, .Subject.CommonName or
// .URISanSelectors.<key>. Immutable; thread-safe.
class AgentPathTemplate {
 public:
  // InvalidArgument "agent_path_template: ..." for an unterminated "{{", an
  // action that is not a field placeholder (functions, pipelines, `if`,
  // trim markers), or an unknown field, naming it and listing the supported
  // ones.
  static absl::StatusOr<AgentPathTemplate> Parse(absl::string_view text);

  // The rendered path. InvalidArgument when a .URISanSelectors.<key> the
  // template names is not among `values` (Go's missingkey=error).
  absl::StatusOr<std::string> Render(const AgentPathValues& values) const;

  const std::string& text() const { return text_; }

 private:
  struct Part {
    bool is_field = false;
    std::string text;  // literal text, or the field path without the dot
  };
  AgentPathTemplate(std::string text, std::vector<Part> parts) : text_(std::move(text)), parts_(std::move(parts)) {}

  std::string text_;
  std::vector<Part> parts_;
};

// The agent ID `rendered` (a template's output) yields:
// spiffe://<td>/spire/agent<rendered>. A missing leading "/" is added, so
// templates written for SPIRE releases that joined paths ("{{ .PluginName
// }}/{{ .Fingerprint }}") name agents as they did there. InvalidArgument
// when the result is not a valid SPIFFE ID (empty segment, characters
// outside [A-Za-z0-9._-], ...).
absl::StatusOr<spiffe::SpiffeId> AgentIdForPath(const spiffe::TrustDomain& td, absl::string_view rendered);

// SPIRE's GenerateChallenge: a fresh random nonce in the member matching the
// leaf's key (RSA or EC). PermissionDenied when the leaf lacks a key usage
// extension allowing digitalSignature (SPIRE refuses a leaf without the
// extension too) or has a key of another type.
absl::StatusOr<Challenge> GenerateChallenge(const crypto::Certificate& leaf);

// SPIRE's VerifyChallengeResponse: `response` must answer `challenge` for
// `key`'s type, carry a kNonceSize response nonce, and its signature over
// SignedMessage(challenge nonce, response nonce) must verify under `key`
// (RSA: RSASSA-PSS with SHA-256; EC: ECDSA with SHA-256). PermissionDenied
// with SPIRE's reason ("expecting ECDSA response", "invalid response nonce",
// "ECDSA signature verify failed", ...) otherwise.
//
// RSA signatures are verified with any salt length, as Go's crypto/rsa does:
// SPIRE agents sign with the longest salt the key allows.
absl::Status VerifyChallengeResponse(const crypto::PublicKey& key, const Challenge& challenge,
                                     const Response& response);

// The x509pop node selectors (type "x509pop") for a leaf and its verified
// path (leaf first, as crypto::VerifyChain returns it), in the order stated
// at the top of this file.
Selectors BuildSelectors(const crypto::Certificate& leaf, const std::vector<crypto::Certificate>& path,
                         const spiffe::TrustDomain& td);

// SPIRE's URI SAN selectors: for each URI SAN of `leaf` that starts with
// "x509pop://<td>/", its percent-decoded path with leading and trailing "/"
// removed, split at the first "/" into key and value; a SAN without a "/" in
// that path is skipped. A later SAN with the same key wins.
std::map<std::string, std::string> UriSanSelectors(const crypto::Certificate& leaf, const spiffe::TrustDomain& td);

// Server plugin configuration (SPIRE's plugin_data keys).
struct ServerConfig {
  // PEM file of trusted CA certificates (`ca_bundle_path`). Exactly one of
  // this and ca_bundle_paths must be set.
  std::string ca_bundle_path;
  // PEM files of trusted CA certificates (`ca_bundle_paths`); the union is
  // trusted. Every certificate is a trust anchor, self-signed or not.
  std::vector<std::string> ca_bundle_paths;
  // `agent_path_template`. Default: kDefaultAgentPathTemplate.
  std::string agent_path_template;
};

class X509PopServerAttestor final : public ServerAttestor {
 public:
  // Loads the CA bundle files and parses the template. InvalidArgument
  // listing every problem found ("ca_bundle_path or ca_bundle_paths must be
  // configured", "only one of ca_bundle_path or ca_bundle_paths can be
  // configured, not both", "unable to load trust bundle \"<path>\": ...",
  // template errors), each prefixed "nodeattestor(x509pop): ". `clock` is
  // not owned and must outlive the attestor.
  static absl::StatusOr<std::unique_ptr<X509PopServerAttestor>> Create(spiffe::TrustDomain td,
                                                                       const ServerConfig& config, const Clock* clock);

  // attestors::node::ServerAttestor
  // One challenge round. Errors, prefixed "nodeattestor(x509pop): ":
  //   InvalidArgument: payload not SPIRE's JSON ("failed to unmarshal
  //     data"), no certificate, a certificate that does not parse, more
  //     than kMaxIntermediates intermediates, an answer that is not a
  //     response ("unable to unmarshal challenge response"), or a template
  //     that cannot make a valid agent ID from this leaf.
  //   PermissionDenied: the chain does not verify at the clock's time
  //     ("certificate verification failed: ..." with OpenSSL's reason), the
  //     leaf cannot sign, or the answer does not verify ("challenge
  //     response verification failed: ...").
  //   The challenger's own error code (Unavailable, DeadlineExceeded, ...).
  // Thread-safe.
  const std::string& name() const override { return name_; }
  absl::StatusOr<AttestResult> Attest(absl::string_view payload, Challenger* challenger) override;

  const std::vector<crypto::Certificate>& trusted_cas() const { return roots_; }

 private:
  X509PopServerAttestor(spiffe::TrustDomain td, std::vector<crypto::Certificate> roots, AgentPathTemplate tmpl,
                        const Clock* clock)
      : td_(std::move(td)), roots_(std::move(roots)), template_(std::move(tmpl)), clock_(clock) {}

  const std::string name_ = kPluginName;
  const spiffe::TrustDomain td_;
  const std::vector<crypto::Certificate> roots_;
  const AgentPathTemplate template_;
  const Clock* const clock_;
};

}  // namespace sigil::attestors::node::x509pop
