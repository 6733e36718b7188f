#pragma once

// The signing authority: the server's X.509 CA and JWT signing keys, their
// rotation, and SVID minting.
//
// Each kind of authority moves prepared → active → old on SPIRE's schedule:
// a successor is prepared (and published in the bundle, so agents trust it
// before it signs anything) once the active authority has lived half its
// lifetime, and activated when one sixth of the active lifetime remains.
// Old authorities stay in the bundle until they expire unless an operator
// taints and revokes them. Rotation state is journaled (JournalStore) after
// every change, keys live in the KeyManager, and both survive restarts.
//
// The schedule is computed from each authority's issuance time (X.509:
// NotBefore + 10 s of backdating) and NotAfter: with lifetime L, the
// successor is prepared at NotAfter - L/2 and activated at NotAfter - L/6.
// When an authority becomes old its key is deleted from the key manager.
// Expired authorities leave the journal; the bundle loses self-signed CAs,
// JWT keys and upstream roots once they have expired.

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "ca/key_manager.h"
#include "ca/upstream_authority.h"
#include "common/clock.h"
#include "sigil/ca/journal.pb.h"
#include "spiffe/bundle.h"
#include "spiffe/crypto/certificate.h"
#include "spiffe/crypto/key.h"
#include "spiffe/crypto/x509_builder.h"
#include "spiffe/id.h"

namespace sigil::ca {

// CaOptions and the mint parameters take their required members (which have
// no empty value: TrustDomain and SpiffeId cannot be default-constructed) in
// the constructor; set the other fields afterwards.
struct CaOptions {
  explicit CaOptions(spiffe::TrustDomain td) : trust_domain(std::move(td)) {}

  spiffe::TrustDomain trust_domain;
  // Lifetime of each X.509 CA certificate and JWT signing key. Default: 24h.
  absl::Duration ca_ttl = absl::Hours(24);
  // Used when a mint request asks for TTL 0. Default: 1h and 5m.
  absl::Duration default_x509_svid_ttl = absl::Hours(1);
  absl::Duration default_jwt_svid_ttl = absl::Minutes(5);
  // Default: ec-p256 for both.
  crypto::KeyType ca_key_type = crypto::KeyType::kEcP256;
  crypto::KeyType jwt_key_type = crypto::KeyType::kEcP256;
  // Subject of CA certificates. Default: C=US, O=SPIFFE (SPIRE's).
  crypto::DistinguishedName ca_subject = {{crypto::NameAttribute::kCountry, "US"},
                                          {crypto::NameAttribute::kOrganization, "SPIFFE"}};
  // `iss` of JWT-SVIDs; omitted when empty.
  std::string jwt_issuer;
};

// Persists the journal (a serialized sigil.ca.Journal). Implemented by the
// server on its datastore; ca/ does not know storage engines.
class JournalStore {
 public:
  virtual ~JournalStore() = default;
  // Returns the saved journal, or nullopt when none was ever saved.
  virtual absl::StatusOr<std::optional<std::string>> LoadJournal() = 0;
  // Durably replaces the saved journal.
  virtual absl::Status SaveJournal(const std::string& journal) = 0;
};

// One authority as published in the trust bundle.
struct PublishedX509Authority {
  crypto::Certificate cert;  // a root: the CA itself, or an upstream root
  bool tainted = false;
};
struct PublishedJwtAuthority {
  spiffe::JwtAuthority authority;
  bool tainted = false;
};

// Receives the local authorities to keep in the trust domain's own bundle.
// Implemented by the server's bundle store.
class BundlePublisher {
 public:
  virtual ~BundlePublisher() = default;
  // Adds the authorities that are missing from the bundle and sets the
  // tainted flag of those present to the given value. Authorities in the
  // bundle but not in the lists are left alone (they may have been appended
  // by an operator, or be old ones still valid).
  virtual absl::Status PublishLocalAuthorities(const std::vector<PublishedX509Authority>& x509,
                                               const std::vector<PublishedJwtAuthority>& jwt) = 0;
  // Removes one authority from the bundle: on revocation, when an authority
  // expired (self-signed CAs, JWT keys, and upstream roots once expired), and
  // when a prepared authority that never signed is replaced. OK when absent.
  virtual absl::Status RemoveX509Authority(const crypto::Certificate& cert) = 0;
  virtual absl::Status RemoveJwtAuthority(const std::string& key_id) = 0;
};

struct X509SvidParams {
  X509SvidParams(std::string spki_der, spiffe::SpiffeId id)
      : spki_der(std::move(spki_der)), id(std::move(id)) {}

  // DER SubjectPublicKeyInfo of the SVID key (from a CSR or a public key).
  std::string spki_der;
  spiffe::SpiffeId id;
  // Zero: the default X509-SVID TTL. Capped at the CA's expiry.
  absl::Duration ttl = absl::ZeroDuration();
  std::vector<std::string> dns_sans;
  // Empty: C=US, O=SPIRE, and CN = the first DNS SAN when there is one.
  crypto::DistinguishedName subject;
};

// A freshly minted X509-SVID as DER, with the facts callers need without
// parsing it back.
struct MintedX509Svid {
  // Leaf first, then the CA chain tail (see MintX509Svid).
  std::vector<std::string> chain_der;
  absl::Time not_after;
  // Big-endian serial number bytes of the leaf.
  std::string serial;
};

struct JwtSvidParams {
  JwtSvidParams(spiffe::SpiffeId id, std::vector<std::string> audience,
                absl::Duration ttl = absl::ZeroDuration())
      : id(std::move(id)), audience(std::move(audience)), ttl(ttl) {}

  spiffe::SpiffeId id;
  std::vector<std::string> audience;
  // Zero: the default JWT-SVID TTL. Capped at the signing key's expiry.
  absl::Duration ttl = absl::ZeroDuration();
};

struct MintedJwtSvid {
  std::string token;
  absl::Time issued_at;
  absl::Time expires_at;
};

// State of one authority, as the localauthority API reports it.
struct AuthorityState {
  // X.509: hex subject key ID of the CA certificate; JWT: the key ID.
  std::string authority_id;
  absl::Time expires_at;
  bool tainted = false;
  // X.509 with an upstream authority: hex SKI of the upstream certificate
  // that signed this CA.
  std::string upstream_authority_id;
};
struct AuthorityStates {
  std::optional<AuthorityState> active;
  std::optional<AuthorityState> prepared;
  std::optional<AuthorityState> old;  // the most recent old authority
};

class CaManager {
 public:
  // Loads the journal and keys, creates the first authorities when there are
  // none usable (none saved, keys lost with a memory key manager, expired),
  // publishes the bundle and journals the result. An active or prepared
  // authority whose key is missing (or no longer matches) becomes old: it
  // stays published until it expires but signs nothing. `upstream` may be
  // null (self-signed root). The pointers must outlive the manager.
  // InvalidArgument naming the option for bad options (ca_ttl under 1m,
  // non-positive default TTLs, empty ca_subject); DataLoss for a journal that
  // does not parse or holds malformed records; errors of the stores, the key
  // manager and the upstream authority are passed on.
  static absl::StatusOr<std::unique_ptr<CaManager>> Create(CaOptions options, KeyManager* keys,
                                                           UpstreamAuthority* upstream,
                                                           JournalStore* journal,
                                                           BundlePublisher* publisher,
                                                           const Clock* clock);

  // Advances rotation to the clock's current time: prepares, activates and
  // forgets expired authorities as the schedule says, and retries bundle
  // removals and key deletions that failed earlier. Call periodically (the
  // server does every 10 s; tests drive a FakeClock). Idempotent. When the
  // server was down past several thresholds, the steps are applied in order
  // (a successor may be prepared and activated in the same call).
  absl::Status Rotate();

  // Mints an X509-SVID: random 128-bit serial, NotBefore = now - 10 s,
  // NotAfter = now + TTL capped at the CA's NotAfter, KU (critical)
  // digitalSignature|keyEncipherment|keyAgreement, EKU serverAuth+clientAuth,
  // CA=false, SKI/AKI, URI SAN = id, DNS SANs. Returns the leaf followed by
  // the CA certificate when it is not itself the published root, and any
  // upstream intermediates. InvalidArgument for an ID outside the trust
  // domain ("id: ..."), a negative TTL ("ttl: ..."), a malformed key
  // ("public key: ...", "public key or subject: malformed
  // SubjectPublicKeyInfo: ...") or subject, or DNS name ("dns: ..."; LDH labels of 1-63
  // characters, at most 253 in all, optionally after a leading "*.");
  // FailedPrecondition when the active CA has expired (Rotate is not being
  // called). Thread-safe; takes no lock held during signing.
  absl::StatusOr<std::vector<crypto::Certificate>> MintX509Svid(const X509SvidParams& params) const;
  // The same, returning the chain as DER certificates (leaf first) without
  // parsing the new leaf back: the fast path for callers that send DER (the
  // server's SVID APIs). Parsing a certificate with OpenSSL costs several
  // times the signature itself.
  absl::StatusOr<MintedX509Svid> MintX509SvidDer(const X509SvidParams& params) const;

  // Mints a JWT-SVID signed by the active JWT key (header alg per key, kid,
  // typ JWT; claims sub, aud, exp, iat, iss when configured). Times are whole
  // seconds (iat = now truncated).
  // InvalidArgument for an ID outside the trust domain ("id: ..."), an empty
  // audience or an empty audience string ("audience: ..."), a negative TTL
  // ("ttl: ..."); FailedPrecondition when the active key has expired.
  // Thread-safe.
  absl::StatusOr<MintedJwtSvid> MintJwtSvid(const JwtSvidParams& params) const;

  // The X.509 authorities and JWT keys currently in the bundle (every
  // unexpired, unrevoked authority, prepared and old ones included; with an
  // upstream authority the X.509 authorities are the upstream roots), as a
  // Bundle. Thread-safe.
  spiffe::Bundle LocalBundle() const;

  // localauthority operations (SPIRE's LocalAuthority API semantics).
  // Prepare: creates and publishes a new authority, replacing a previously
  // prepared one (which never signed anything, so it is dropped from the
  // journal and the bundle). Activate: `authority_id` must be the prepared
  // authority; the active one becomes old. Taint: `authority_id` must be the
  // old authority (the most recent one; the active one cannot be tainted);
  // marks it tainted in the bundle so agents replace the SVIDs it signed.
  // Revoke: the old authority must be tainted; removes it from the journal
  // and the bundle. With an upstream authority, X.509 taint/revoke are
  // FailedPrecondition (the published roots are the upstream's).
  // Status codes: InvalidArgument "authority_id: ..." for an empty or
  // unknown ID or, on Activate, an ID other than the prepared one;
  // FailedPrecondition for state violations ("no prepared authority", "no
  // old authority", "only the old authority can be tainted", "the active
  // authority cannot be tainted", "authority ... is already tainted", "only
  // a tainted authority can be revoked"); store errors are passed on.
  AuthorityStates GetX509AuthorityStates() const;
  absl::StatusOr<AuthorityState> PrepareX509Authority();
  absl::StatusOr<AuthorityState> ActivateX509Authority(const std::string& authority_id);
  absl::StatusOr<AuthorityState> TaintX509Authority(const std::string& authority_id);
  absl::StatusOr<AuthorityState> RevokeX509Authority(const std::string& authority_id);
  AuthorityStates GetJwtAuthorityStates() const;
  absl::StatusOr<AuthorityState> PrepareJwtAuthority();
  absl::StatusOr<AuthorityState> ActivateJwtAuthority(const std::string& authority_id);
  absl::StatusOr<AuthorityState> TaintJwtAuthority(const std::string& authority_id);
  absl::StatusOr<AuthorityState> RevokeJwtAuthority(const std::string& authority_id);

  const CaOptions& options() const { return options_; }

 private:
  struct ActiveX509;
  struct ActiveJwt;
  struct Snapshots;
  struct LocalAuthorities;
  // A state change in progress: the next journal and the keys generated for
  // it (deleted again when the change is abandoned).
  struct Txn {
    Journal journal;
    std::vector<std::string> new_keys;
  };
  CaManager(CaOptions options, KeyManager* keys, UpstreamAuthority* upstream, JournalStore* journal,
            BundlePublisher* publisher, const Clock* clock);

  absl::Status LoadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops expired authorities from `txn` and applies the rotation schedule
  // at `now`. Returns whether anything changed.
  absl::StatusOr<bool> AdvanceLocked(Txn* txn, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<X509AuthorityRecord> NewX509AuthorityLocked(AuthorityStatus status, Txn* txn)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<JwtAuthorityRecord> NewJwtAuthorityLocked(AuthorityStatus status, Txn* txn)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Makes `txn` the current state: builds the signing snapshots, publishes
  // the authorities, saves the journal, then swaps the snapshots in. When a
  // step before the save fails nothing changes (keys generated for `txn` are
  // deleted). After the save it removes from the bundle what left it and
  // deletes the keys of authorities that stopped signing; failures there are
  // retried by later commits and Rotate calls.
  absl::Status CommitLocked(Txn txn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status AbandonLocked(const Txn& txn, absl::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<Snapshots> BuildSnapshotsLocked(const Journal& journal) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  absl::Status FlushPendingLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Validates `params` and issues the leaf with the active CA, which it
  // returns in `ca`.
  absl::StatusOr<std::string> MintLeafDer(const X509SvidParams& params,
                                          std::shared_ptr<const ActiveX509>* ca_out,
                                          absl::Time* not_after, std::string* serial) const;
  AuthorityState X509State(const X509AuthorityRecord& record) const;
  std::shared_ptr<const ActiveX509> active_x509() const;
  std::shared_ptr<const ActiveJwt> active_jwt() const;

  const CaOptions options_;
  KeyManager* const keys_;
  UpstreamAuthority* const upstream_;
  JournalStore* const journal_store_;
  BundlePublisher* const publisher_;
  const Clock* const clock_;

  mutable absl::Mutex mu_;
  Journal journal_ ABSL_GUARDED_BY(mu_);
  // Work left over from commits whose follow-up steps failed: X.509
  // authorities (DER) and JWT key IDs to remove from the bundle, key manager
  // IDs to delete.
  std::vector<std::string> pending_x509_removals_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> pending_jwt_removals_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> pending_key_deletions_ ABSL_GUARDED_BY(mu_);
  // Immutable snapshots used by minting; swapped under snapshot_mu_.
  mutable absl::Mutex snapshot_mu_ ABSL_ACQUIRED_AFTER(mu_);
  std::shared_ptr<const ActiveX509> x509_ ABSL_GUARDED_BY(snapshot_mu_);
  std::shared_ptr<const ActiveJwt> jwt_ ABSL_GUARDED_BY(snapshot_mu_);
  // The journal's authorities, parsed once per commit: LocalBundle() runs
  // on every authenticated call and must not parse certificates.
  std::shared_ptr<const LocalAuthorities> local_ ABSL_GUARDED_BY(snapshot_mu_);
};

}  // namespace sigil::ca
