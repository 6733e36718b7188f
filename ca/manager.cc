#include "ca/manager.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"
#include "spiffe/crypto/encoding.h"
#include "spiffe/jwtsvid.h"

namespace sigil::ca {

struct CaManager::ActiveX509 {
  std::string authority_id;
  absl::Time not_after;
  std::unique_ptr<crypto::CertificateIssuer> issuer;
  // Appended after the leaf: the CA and upstream intermediates when the CA is
  // not itself the published root; empty for a self-signed CA.
  std::vector<crypto::Certificate> chain_tail;
  std::vector<std::string> chain_tail_der;
};

struct CaManager::ActiveJwt {
  std::string key_id;  // the `kid`
  crypto::PrivateKey key;
  absl::Time not_after;
};

struct CaManager::Snapshots {
  std::shared_ptr<const ActiveX509> x509;
  std::shared_ptr<const ActiveJwt> jwt;
};

// Every authority of the journal with the expiry of its record (an upstream
// root is published for as long as a record using it lives).
struct CaManager::LocalAuthorities {
  std::vector<std::pair<crypto::Certificate, absl::Time>> x509;
  std::vector<spiffe::JwtAuthority> jwt;
};

namespace {

using google::protobuf::RepeatedPtrField;

// Certificates are backdated so that peers with slightly slow clocks accept
// them at once (SPIRE does the same).
constexpr absl::Duration kBackdate = absl::Seconds(10);
constexpr absl::Duration kMinCaTtl = absl::Minutes(1);
// Bound on rotation steps per Rotate call; one step is enough in steady
// state, a few after downtime.
constexpr int kMaxRotationSteps = 8;

absl::Time Unix(int64_t seconds) { return absl::FromUnixSeconds(seconds); }
absl::Time TruncateToSeconds(absl::Time t) { return Unix(absl::ToUnixSeconds(t)); }

template <typename R>
absl::Time NotAfter(const R& record) {
  return Unix(record.not_after_unix());
}
absl::Time IssuedAt(const X509AuthorityRecord& record) {
  return Unix(record.not_before_unix()) + kBackdate;
}
absl::Time IssuedAt(const JwtAuthorityRecord& record) { return Unix(record.not_before_unix()); }

template <typename R>
absl::Time PrepareThreshold(const R& record) {
  return NotAfter(record) - (NotAfter(record) - IssuedAt(record)) / 2;
}
template <typename R>
absl::Time ActivateThreshold(const R& record) {
  return NotAfter(record) - (NotAfter(record) - IssuedAt(record)) / 6;
}

// Index of the newest record with `status`, or -1.
template <typename R>
int FindLast(const RepeatedPtrField<R>& list, AuthorityStatus status) {
  for (int i = list.size() - 1; i >= 0; --i) {
    if (list.Get(i).status() == status) return i;
  }
  return -1;
}

template <typename R>
int FindById(const RepeatedPtrField<R>& list, const std::string& authority_id) {
  for (int i = list.size() - 1; i >= 0; --i) {
    if (list.Get(i).authority_id() == authority_id) return i;
  }
  return -1;
}

template <typename R>
void EraseAt(RepeatedPtrField<R>* list, int index) {
  list->DeleteSubrange(index, 1);
}

template <typename R>
bool DropExpired(RepeatedPtrField<R>* list, absl::Time now, const char* kind) {
  bool changed = false;
  for (int i = list->size() - 1; i >= 0; --i) {
    if (NotAfter(list->Get(i)) <= now) {
      spdlog::info("ca: {} authority {} expired; dropping it", kind, list->Get(i).authority_id());
      EraseAt(list, i);
      changed = true;
    }
  }
  return changed;
}

// Keeps one ACTIVE and one PREPARED record (the newest); others become OLD.
template <typename R>
void NormalizeStatuses(RepeatedPtrField<R>* list) {
  for (AuthorityStatus status : {ACTIVE, PREPARED}) {
    int keep = FindLast(*list, status);
    for (int i = 0; i < keep; ++i) {
      if (list->Get(i).status() == status) list->Mutable(i)->set_status(OLD);
    }
  }
}

// Applies the schedule to one kind of authority. `create(status)` makes a new
// record (StatusOr<R>).
template <typename R, typename CreateFn>
absl::StatusOr<bool> ApplySchedule(RepeatedPtrField<R>* list, absl::Time now, const char* kind,
                                   CreateFn create) {
  bool changed = false;
  for (int step = 0; step < kMaxRotationSteps; ++step) {
    int active = FindLast(*list, ACTIVE);
    int prepared = FindLast(*list, PREPARED);
    if (active < 0) {
      if (prepared >= 0) {
        list->Mutable(prepared)->set_status(ACTIVE);
        spdlog::info("ca: {} authority {} activated", kind, list->Get(prepared).authority_id());
      } else {
        SIGIL_ASSIGN_OR_RETURN(R record, create(ACTIVE));
        spdlog::info("ca: {} authority {} created and activated", kind, record.authority_id());
        *list->Add() = std::move(record);
      }
      changed = true;
      continue;
    }
    if (now >= ActivateThreshold(list->Get(active))) {
      if (prepared < 0) {
        SIGIL_ASSIGN_OR_RETURN(R record, create(PREPARED));
        *list->Add() = std::move(record);
        prepared = list->size() - 1;
      }
      list->Mutable(active)->set_status(OLD);
      list->Mutable(prepared)->set_status(ACTIVE);
      spdlog::info("ca: {} authority {} activated; {} is now old", kind,
                   list->Get(prepared).authority_id(), list->Get(active).authority_id());
      changed = true;
      continue;
    }
    if (prepared < 0 && now >= PrepareThreshold(list->Get(active))) {
      SIGIL_ASSIGN_OR_RETURN(R record, create(PREPARED));
      spdlog::info("ca: {} authority {} prepared", kind, record.authority_id());
      *list->Add() = std::move(record);
      changed = true;
      continue;
    }
    break;
  }
  return changed;
}

bool IsSelfSigned(const X509AuthorityRecord& record) {
  return record.chain_der_size() > 0 &&
         std::find(record.roots_der().begin(), record.roots_der().end(), record.chain_der(0)) !=
             record.roots_der().end();
}

struct RootUse {
  bool tainted = false;
  // The root is the (self-signed) CA of one of the authorities.
  bool is_own_ca = false;
};

// Every X.509 authority the journal publishes, by DER.
std::map<std::string, RootUse> PublishedRoots(const Journal& journal) {
  std::map<std::string, RootUse> roots;
  for (const X509AuthorityRecord& record : journal.x509()) {
    const bool self_signed = IsSelfSigned(record);
    for (const std::string& der : record.roots_der()) {
      RootUse& use = roots[der];
      use.tainted = use.tainted || record.tainted();
      use.is_own_ca = use.is_own_ca || (self_signed && der == record.chain_der(0));
    }
  }
  return roots;
}

// Key manager IDs of authorities that may sign (active or prepared).
std::set<std::string> SigningKeyIds(const Journal& journal) {
  std::set<std::string> ids;
  for (const auto& record : journal.x509()) {
    if (record.status() != OLD) ids.insert(record.key_id());
  }
  for (const auto& record : journal.jwt()) {
    if (record.status() != OLD) ids.insert(record.key_id());
  }
  return ids;
}

absl::Status ValidateStatus(AuthorityStatus status, absl::string_view where) {
  if (status != PREPARED && status != ACTIVE && status != OLD) {
    return absl::DataLossError(absl::StrCat("ca journal: ", where, ": unknown status ", status));
  }
  return absl::OkStatus();
}

absl::Status ValidateJournal(const Journal& journal) {
  for (int i = 0; i < journal.x509_size(); ++i) {
    const X509AuthorityRecord& record = journal.x509(i);
    std::string where = absl::StrCat("x509[", i, "]");
    if (record.authority_id().empty() || record.key_id().empty()) {
      return absl::DataLossError(absl::StrCat("ca journal: ", where, ": missing authority or key id"));
    }
    SIGIL_RETURN_IF_ERROR(ValidateStatus(record.status(), where));
    if (record.chain_der_size() == 0 || record.roots_der_size() == 0) {
      return absl::DataLossError(absl::StrCat("ca journal: ", where, ": missing chain or roots"));
    }
    for (const std::string& der : record.chain_der()) {
      if (!crypto::Certificate::FromDer(der).ok()) {
        return absl::DataLossError(absl::StrCat("ca journal: ", where, ": malformed certificate"));
      }
    }
    for (const std::string& der : record.roots_der()) {
      if (!crypto::Certificate::FromDer(der).ok()) {
        return absl::DataLossError(absl::StrCat("ca journal: ", where, ": malformed root"));
      }
    }
  }
  for (int i = 0; i < journal.jwt_size(); ++i) {
    const JwtAuthorityRecord& record = journal.jwt(i);
    std::string where = absl::StrCat("jwt[", i, "]");
    if (record.authority_id().empty() || record.key_id().empty()) {
      return absl::DataLossError(absl::StrCat("ca journal: ", where, ": missing authority or key id"));
    }
    SIGIL_RETURN_IF_ERROR(ValidateStatus(record.status(), where));
    if (!crypto::PublicKey::FromSpkiDer(record.public_key_der()).ok()) {
      return absl::DataLossError(absl::StrCat("ca journal: ", where, ": malformed public key"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateOptions(const CaOptions& options) {
  if (options.ca_ttl < kMinCaTtl) {
    return absl::InvalidArgumentError(
        absl::StrCat("ca_ttl: must be at least ", absl::FormatDuration(kMinCaTtl), ", got ",
                     absl::FormatDuration(options.ca_ttl)));
  }
  if (options.default_x509_svid_ttl <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("default_x509_svid_ttl: must be positive");
  }
  if (options.default_jwt_svid_ttl <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("default_jwt_svid_ttl: must be positive");
  }
  if (options.ca_subject.empty()) {
    return absl::InvalidArgumentError("ca_subject: must not be empty");
  }
  return absl::OkStatus();
}

bool IsLdhChar(char c) { return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-'; }

absl::Status ValidateDnsName(const std::string& name) {
  const auto bad = [&name](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("dns: \"", name, "\" is not a valid DNS name: ", why));
  };
  if (name.empty()) return absl::InvalidArgumentError("dns: DNS names must not be empty");
  if (name.size() > 253) return bad("longer than 253 characters");
  absl::string_view rest = name;
  if (absl::StartsWith(rest, "*.")) rest.remove_prefix(2);
  if (rest.empty()) return bad("a wildcard must be followed by a domain");
  for (absl::string_view label : absl::StrSplit(rest, '.')) {
    if (label.empty()) return bad("empty label");
    if (label.size() > 63) return bad("label longer than 63 characters");
    if (!std::all_of(label.begin(), label.end(), IsLdhChar)) {
      return bad("labels may hold only letters, digits and '-' (a wildcard only as \"*.\" first)");
    }
    if (label.front() == '-' || label.back() == '-') {
      return bad("labels must not start or end with '-'");
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateMemberOf(const spiffe::SpiffeId& id, const spiffe::TrustDomain& td) {
  if (!id.MemberOf(td)) {
    return absl::InvalidArgumentError(absl::StrCat("id: \"", id.ToString(),
                                                   "\" is not a member of trust domain \"",
                                                   td.name(), "\""));
  }
  return absl::OkStatus();
}

AuthorityState JwtState(const JwtAuthorityRecord& record) {
  AuthorityState state;
  state.authority_id = record.authority_id();
  state.expires_at = NotAfter(record);
  state.tainted = record.tainted();
  return state;
}

// Resolves `authority_id` to the newest old authority for taint/revoke,
// enforcing SPIRE's rules. Returns the record index.
template <typename R>
absl::StatusOr<int> FindOldForOperation(const RepeatedPtrField<R>& list,
                                        const std::string& authority_id, absl::string_view verb) {
  if (authority_id.empty()) {
    return absl::InvalidArgumentError("authority_id: no authority ID provided");
  }
  int index = FindById(list, authority_id);
  if (index < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("authority_id: no authority with ID \"", authority_id, "\""));
  }
  const R& record = list.Get(index);
  if (record.status() == ACTIVE) {
    return absl::FailedPreconditionError(
        absl::StrCat("the active authority cannot be ", verb, "; only the old authority can be ",
                     verb));
  }
  if (record.status() == PREPARED || index != FindLast(list, OLD)) {
    return absl::FailedPreconditionError(absl::StrCat("only the old authority can be ", verb));
  }
  return index;
}

}  // namespace

// ---- Construction and loading ----

CaManager::CaManager(CaOptions options, KeyManager* keys, UpstreamAuthority* upstream,
                     JournalStore* journal, BundlePublisher* publisher, const Clock* clock)
    : options_(std::move(options)),
      keys_(keys),
      upstream_(upstream),
      journal_store_(journal),
      publisher_(publisher),
      clock_(clock) {}

absl::StatusOr<std::unique_ptr<CaManager>> CaManager::Create(CaOptions options, KeyManager* keys,
                                                             UpstreamAuthority* upstream,
                                                             JournalStore* journal,
                                                             BundlePublisher* publisher,
                                                             const Clock* clock) {
  if (keys == nullptr || journal == nullptr || publisher == nullptr || clock == nullptr) {
    return absl::InvalidArgumentError(
        "ca: the key manager, journal store, bundle publisher and clock are required");
  }
  SIGIL_RETURN_IF_ERROR(ValidateOptions(options));
  auto manager = std::unique_ptr<CaManager>(
      new CaManager(std::move(options), keys, upstream, journal, publisher, clock));
  absl::MutexLock lock(&manager->mu_);
  SIGIL_RETURN_IF_ERROR(manager->LoadLocked());
  return manager;
}

absl::Status CaManager::LoadLocked() {
  SIGIL_ASSIGN_OR_RETURN(std::optional<std::string> saved, journal_store_->LoadJournal());
  Journal loaded;
  if (saved.has_value()) {
    if (!loaded.ParseFromString(*saved)) {
      return absl::DataLossError("ca journal: cannot parse the saved journal");
    }
    SIGIL_RETURN_IF_ERROR(ValidateJournal(loaded));
  }
  // The loaded journal is the "before" state, so that the first commit
  // deletes the keys of authorities demoted here and unpublishes expired ones.
  journal_ = loaded;
  Txn txn{std::move(loaded), {}};
  NormalizeStatuses(txn.journal.mutable_x509());
  NormalizeStatuses(txn.journal.mutable_jwt());
  const absl::Time now = clock_->Now();
  DropExpired(txn.journal.mutable_x509(), now, "X.509");
  DropExpired(txn.journal.mutable_jwt(), now, "JWT");

  for (X509AuthorityRecord& record : *txn.journal.mutable_x509()) {
    if (record.status() == OLD) continue;
    absl::StatusOr<crypto::PrivateKey> key = keys_->GetKey(record.key_id());
    if (!key.ok() && key.status().code() != absl::StatusCode::kNotFound) return key.status();
    absl::StatusOr<crypto::Certificate> cert = crypto::Certificate::FromDer(record.chain_der(0));
    if (!cert.ok()) return cert.status();
    if (!key.ok() || key->public_key() != cert->public_key()) {
      spdlog::warn(
          "ca: the key of X.509 authority {} is {}; it stays published until it expires but "
          "signs nothing",
          record.authority_id(), key.ok() ? "not the certificate's" : "missing");
      record.set_status(OLD);
    }
  }
  for (JwtAuthorityRecord& record : *txn.journal.mutable_jwt()) {
    if (record.status() == OLD) continue;
    absl::StatusOr<crypto::PrivateKey> key = keys_->GetKey(record.key_id());
    if (!key.ok() && key.status().code() != absl::StatusCode::kNotFound) return key.status();
    if (!key.ok() || key->public_key().spki_der() != record.public_key_der()) {
      spdlog::warn(
          "ca: the key of JWT authority {} is {}; it stays published until it expires but "
          "signs nothing",
          record.authority_id(), key.ok() ? "not the journaled one" : "missing");
      record.set_status(OLD);
    }
  }

  absl::StatusOr<bool> advanced = AdvanceLocked(&txn, now);
  if (!advanced.ok()) return AbandonLocked(txn, advanced.status());
  return CommitLocked(std::move(txn));
}

// ---- Rotation ----

absl::StatusOr<bool> CaManager::AdvanceLocked(Txn* txn, absl::Time now) {
  bool changed = DropExpired(txn->journal.mutable_x509(), now, "X.509");
  changed = DropExpired(txn->journal.mutable_jwt(), now, "JWT") || changed;
  SIGIL_ASSIGN_OR_RETURN(
      bool x509_changed,
      ApplySchedule(txn->journal.mutable_x509(), now, "X.509", [this, txn](AuthorityStatus status) {
        mu_.AssertHeld();
        return NewX509AuthorityLocked(status, txn);
      }));
  SIGIL_ASSIGN_OR_RETURN(
      bool jwt_changed,
      ApplySchedule(txn->journal.mutable_jwt(), now, "JWT", [this, txn](AuthorityStatus status) {
        mu_.AssertHeld();
        return NewJwtAuthorityLocked(status, txn);
      }));
  return changed || x509_changed || jwt_changed;
}

absl::Status CaManager::Rotate() {
  absl::MutexLock lock(&mu_);
  absl::Status status = FlushPendingLocked();
  Txn txn{journal_, {}};
  absl::StatusOr<bool> changed = AdvanceLocked(&txn, clock_->Now());
  if (!changed.ok()) {
    status.Update(AbandonLocked(txn, changed.status()));
  } else if (*changed) {
    status.Update(CommitLocked(std::move(txn)));
  }
  return status;
}

absl::StatusOr<X509AuthorityRecord> CaManager::NewX509AuthorityLocked(AuthorityStatus status,
                                                                      Txn* txn) {
  const std::string key_id = absl::StrCat("x509-ca-", crypto::HexEncode(crypto::RandomBytes(8)));
  SIGIL_ASSIGN_OR_RETURN(crypto::PrivateKey key, keys_->GenerateKey(key_id, options_.ca_key_type));
  txn->new_keys.push_back(key_id);

  const absl::Time now = clock_->Now();
  std::vector<crypto::Certificate> chain;
  std::vector<crypto::Certificate> roots;
  if (upstream_ != nullptr) {
    SIGIL_ASSIGN_OR_RETURN(UpstreamSignedCa signed_ca,
                           upstream_->MintX509Ca(key.public_key(), options_.ca_subject,
                                                 options_.trust_domain, now - kBackdate,
                                                 now + options_.ca_ttl));
    if (signed_ca.chain.empty() || signed_ca.roots.empty() ||
        signed_ca.chain.front().public_key() != key.public_key()) {
      return absl::InternalError(absl::StrCat("ca: upstream authority \"", upstream_->name(),
                                              "\" returned an unusable CA certificate"));
    }
    chain = std::move(signed_ca.chain);
    roots = std::move(signed_ca.roots);
  } else {
    crypto::CertificateTemplate tmpl;
    tmpl.serial = crypto::RandomSerial();
    tmpl.subject = options_.ca_subject;
    tmpl.not_before = now - kBackdate;
    tmpl.not_after = now + options_.ca_ttl;
    tmpl.is_ca = true;
    tmpl.key_usage = crypto::kKeyUsageKeyCertSign | crypto::kKeyUsageCrlSign |
                     crypto::kKeyUsageDigitalSignature;
    tmpl.uri_sans = {options_.trust_domain.IdString()};
    SIGIL_ASSIGN_OR_RETURN(crypto::Certificate cert, crypto::SelfSign(tmpl, key));
    chain = {cert};
    roots = {cert};
  }
  const crypto::Certificate& ca = chain.front();
  if (ca.subject_key_id().empty()) {
    return absl::InternalError("ca: the CA certificate has no subject key identifier");
  }
  X509AuthorityRecord record;
  record.set_authority_id(crypto::HexEncode(ca.subject_key_id()));
  record.set_key_id(key_id);
  for (const crypto::Certificate& cert : chain) record.add_chain_der(cert.der());
  for (const crypto::Certificate& cert : roots) record.add_roots_der(cert.der());
  record.set_status(status);
  record.set_not_before_unix(absl::ToUnixSeconds(ca.not_before()));
  record.set_not_after_unix(absl::ToUnixSeconds(ca.not_after()));
  return record;
}

absl::StatusOr<JwtAuthorityRecord> CaManager::NewJwtAuthorityLocked(AuthorityStatus status,
                                                                    Txn* txn) {
  const std::string key_id =
      absl::StrCat("jwt-signer-", crypto::HexEncode(crypto::RandomBytes(8)));
  SIGIL_ASSIGN_OR_RETURN(crypto::PrivateKey key, keys_->GenerateKey(key_id, options_.jwt_key_type));
  txn->new_keys.push_back(key_id);
  const absl::Time now = TruncateToSeconds(clock_->Now());
  JwtAuthorityRecord record;
  // 24 random bytes: a 32-character base64url kid.
  record.set_authority_id(crypto::Base64UrlEncode(crypto::RandomBytes(24)));
  record.set_key_id(key_id);
  record.set_public_key_der(key.public_key().spki_der());
  record.set_status(status);
  record.set_not_before_unix(absl::ToUnixSeconds(now));
  record.set_not_after_unix(absl::ToUnixSeconds(now + options_.ca_ttl));
  return record;
}

// ---- Commit ----

absl::StatusOr<CaManager::Snapshots> CaManager::BuildSnapshotsLocked(const Journal& journal) const {
  Snapshots out;
  int x = FindLast(journal.x509(), ACTIVE);
  int j = FindLast(journal.jwt(), ACTIVE);
  if (x < 0 || j < 0) return absl::InternalError("ca: no active authority to sign with");

  const X509AuthorityRecord& x509 = journal.x509(x);
  SIGIL_ASSIGN_OR_RETURN(crypto::PrivateKey ca_key, keys_->GetKey(x509.key_id()));
  auto active_x509 = std::make_shared<ActiveX509>();
  std::vector<crypto::Certificate> chain;
  for (const std::string& der : x509.chain_der()) {
    SIGIL_ASSIGN_OR_RETURN(crypto::Certificate cert, crypto::Certificate::FromDer(der));
    chain.push_back(std::move(cert));
  }
  SIGIL_ASSIGN_OR_RETURN(active_x509->issuer, crypto::CertificateIssuer::Create(chain[0], ca_key));
  active_x509->authority_id = x509.authority_id();
  active_x509->not_after = NotAfter(x509);
  if (!IsSelfSigned(x509)) {
    active_x509->chain_tail = std::move(chain);
    active_x509->chain_tail_der.assign(x509.chain_der().begin(), x509.chain_der().end());
  }
  out.x509 = std::move(active_x509);

  const JwtAuthorityRecord& jwt = journal.jwt(j);
  SIGIL_ASSIGN_OR_RETURN(crypto::PrivateKey jwt_key, keys_->GetKey(jwt.key_id()));
  out.jwt = std::make_shared<ActiveJwt>(ActiveJwt{jwt.authority_id(), jwt_key, NotAfter(jwt)});
  return out;
}

absl::Status CaManager::AbandonLocked(const Txn& txn, absl::Status status) {
  for (const std::string& key_id : txn.new_keys) {
    absl::Status deleted = keys_->DeleteKey(key_id);
    if (!deleted.ok()) pending_key_deletions_.push_back(key_id);
  }
  return status;
}

absl::Status CaManager::CommitLocked(Txn txn) {
  absl::StatusOr<Snapshots> snapshots = BuildSnapshotsLocked(txn.journal);
  if (!snapshots.ok()) return AbandonLocked(txn, snapshots.status());

  // Publish before journaling: an authority must be in the bundle before it
  // can sign, and one published but never journaled is harmless.
  const std::map<std::string, RootUse> roots = PublishedRoots(txn.journal);
  std::vector<PublishedX509Authority> x509;
  std::map<std::string, crypto::Certificate> parsed;
  for (const auto& [der, use] : roots) {
    absl::StatusOr<crypto::Certificate> cert = crypto::Certificate::FromDer(der);
    if (!cert.ok()) return AbandonLocked(txn, cert.status());
    parsed.emplace(der, *cert);
    x509.push_back({*std::move(cert), use.tainted});
  }
  auto local = std::make_shared<LocalAuthorities>();
  for (const X509AuthorityRecord& record : txn.journal.x509()) {
    for (const std::string& der : record.roots_der()) local->x509.emplace_back(parsed.at(der), NotAfter(record));
  }
  std::vector<PublishedJwtAuthority> jwt;
  for (const JwtAuthorityRecord& record : txn.journal.jwt()) {
    absl::StatusOr<crypto::PublicKey> key = crypto::PublicKey::FromSpkiDer(record.public_key_der());
    if (!key.ok()) return AbandonLocked(txn, key.status());
    spiffe::JwtAuthority authority{record.authority_id(), *std::move(key), NotAfter(record)};
    local->jwt.push_back(authority);
    jwt.push_back({std::move(authority), record.tainted()});
  }
  absl::Status published = publisher_->PublishLocalAuthorities(x509, jwt);
  if (!published.ok()) return AbandonLocked(txn, published);

  std::string serialized;
  if (!txn.journal.SerializeToString(&serialized)) {
    return AbandonLocked(txn, absl::InternalError("ca journal: cannot serialize"));
  }
  absl::Status saved = journal_store_->SaveJournal(serialized);
  if (!saved.ok()) return AbandonLocked(txn, saved);

  // Committed. Work out what left the bundle and which keys stopped signing.
  const absl::Time now = clock_->Now();
  for (const auto& [der, use] : PublishedRoots(journal_)) {
    if (roots.count(der) != 0) continue;
    absl::StatusOr<crypto::Certificate> cert = crypto::Certificate::FromDer(der);
    // Upstream roots may be shared with other servers of the trust domain:
    // they go only once expired.
    if (use.is_own_ca || (cert.ok() && cert->not_after() <= now)) {
      pending_x509_removals_.push_back(der);
    }
  }
  std::set<std::string> kids;
  for (const JwtAuthorityRecord& record : txn.journal.jwt()) kids.insert(record.authority_id());
  for (const JwtAuthorityRecord& record : journal_.jwt()) {
    if (kids.count(record.authority_id()) == 0) pending_jwt_removals_.push_back(record.authority_id());
  }
  const std::set<std::string> signing_after = SigningKeyIds(txn.journal);
  for (const std::string& key_id : SigningKeyIds(journal_)) {
    if (signing_after.count(key_id) == 0) pending_key_deletions_.push_back(key_id);
  }

  journal_ = std::move(txn.journal);
  {
    absl::MutexLock lock(&snapshot_mu_);
    x509_ = std::move(snapshots->x509);
    jwt_ = std::move(snapshots->jwt);
    local_ = std::move(local);
  }
  return FlushPendingLocked();
}

absl::Status CaManager::FlushPendingLocked() {
  absl::Status status;
  std::vector<std::string> x509_left;
  for (const std::string& der : pending_x509_removals_) {
    absl::StatusOr<crypto::Certificate> cert = crypto::Certificate::FromDer(der);
    if (!cert.ok()) continue;  // journaled DER was validated; cannot happen
    absl::Status removed = publisher_->RemoveX509Authority(*cert);
    if (!removed.ok()) {
      x509_left.push_back(der);
      status.Update(removed);
    }
  }
  pending_x509_removals_ = std::move(x509_left);
  std::vector<std::string> jwt_left;
  for (const std::string& kid : pending_jwt_removals_) {
    absl::Status removed = publisher_->RemoveJwtAuthority(kid);
    if (!removed.ok()) {
      jwt_left.push_back(kid);
      status.Update(removed);
    }
  }
  pending_jwt_removals_ = std::move(jwt_left);
  std::vector<std::string> keys_left;
  for (const std::string& key_id : pending_key_deletions_) {
    absl::Status deleted = keys_->DeleteKey(key_id);
    if (!deleted.ok()) {
      keys_left.push_back(key_id);
      status.Update(deleted);
    }
  }
  pending_key_deletions_ = std::move(keys_left);
  return status;
}

std::shared_ptr<const CaManager::ActiveX509> CaManager::active_x509() const {
  absl::ReaderMutexLock lock(&snapshot_mu_);
  return x509_;
}

std::shared_ptr<const CaManager::ActiveJwt> CaManager::active_jwt() const {
  absl::ReaderMutexLock lock(&snapshot_mu_);
  return jwt_;
}

// ---- Minting ----

absl::StatusOr<std::string> CaManager::MintLeafDer(const X509SvidParams& params,
                                                   std::shared_ptr<const ActiveX509>* ca_out,
                                                   absl::Time* not_after, std::string* serial) const {
  SIGIL_RETURN_IF_ERROR(ValidateMemberOf(params.id, options_.trust_domain));
  if (params.ttl < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("ttl: must not be negative");
  }
  for (const std::string& dns : params.dns_sans) SIGIL_RETURN_IF_ERROR(ValidateDnsName(dns));
  // The key itself is checked by the issuer's DER parser, which is much
  // cheaper than decoding it with OpenSSL.
  if (params.spki_der.empty()) return absl::InvalidArgumentError("public key: empty");

  // Time first, then the authority: a snapshot taken after `now` is at
  // least as current as `now`, so a rotation racing this call cannot leave
  // us judging an outgoing authority by a later clock.
  const absl::Time now = clock_->Now();
  std::shared_ptr<const ActiveX509> ca = active_x509();
  *ca_out = ca;
  if (now >= ca->not_after) {
    return absl::FailedPreconditionError(
        absl::StrCat("the active X.509 authority ", ca->authority_id, " expired at ",
                     absl::FormatTime(ca->not_after), "; CA rotation is not running"));
  }
  const absl::Duration ttl =
      params.ttl == absl::ZeroDuration() ? options_.default_x509_svid_ttl : params.ttl;

  crypto::CertificateTemplate tmpl;
  tmpl.serial = crypto::RandomSerial();
  if (params.subject.empty()) {
    tmpl.subject = {{crypto::NameAttribute::kCountry, "US"},
                    {crypto::NameAttribute::kOrganization, "SPIRE"}};
    if (!params.dns_sans.empty()) {
      tmpl.subject.emplace_back(crypto::NameAttribute::kCommonName, params.dns_sans.front());
    }
  } else {
    tmpl.subject = params.subject;
  }
  tmpl.not_before = now - kBackdate;
  tmpl.not_after = std::min(now + ttl, ca->not_after);
  tmpl.is_ca = false;
  tmpl.key_usage = crypto::kKeyUsageDigitalSignature | crypto::kKeyUsageKeyEncipherment |
                   crypto::kKeyUsageKeyAgreement;
  tmpl.ext_key_usage = {crypto::ExtKeyUsage::kServerAuth, crypto::ExtKeyUsage::kClientAuth};
  tmpl.uri_sans = {params.id.ToString()};
  tmpl.dns_sans = params.dns_sans;
  *not_after = tmpl.not_after;
  *serial = tmpl.serial;

  absl::StatusOr<std::string> leaf = ca->issuer->IssueDer(tmpl, params.spki_der);
  if (!leaf.ok()) {
    return absl::Status(leaf.status().code(),
                        absl::StrCat("public key or subject: ", leaf.status().message()));
  }
  return leaf;
}

absl::StatusOr<MintedX509Svid> CaManager::MintX509SvidDer(const X509SvidParams& params) const {
  std::shared_ptr<const ActiveX509> ca;
  MintedX509Svid out;
  SIGIL_ASSIGN_OR_RETURN(std::string leaf, MintLeafDer(params, &ca, &out.not_after, &out.serial));
  out.chain_der.reserve(1 + ca->chain_tail_der.size());
  out.chain_der.push_back(std::move(leaf));
  out.chain_der.insert(out.chain_der.end(), ca->chain_tail_der.begin(), ca->chain_tail_der.end());
  return out;
}

absl::StatusOr<std::vector<crypto::Certificate>> CaManager::MintX509Svid(
    const X509SvidParams& params) const {
  std::shared_ptr<const ActiveX509> ca;
  absl::Time not_after;
  std::string serial;
  SIGIL_ASSIGN_OR_RETURN(std::string leaf_der, MintLeafDer(params, &ca, &not_after, &serial));
  SIGIL_ASSIGN_OR_RETURN(crypto::Certificate leaf, crypto::Certificate::FromDer(leaf_der));
  std::vector<crypto::Certificate> chain;
  chain.reserve(1 + ca->chain_tail.size());
  chain.push_back(std::move(leaf));
  chain.insert(chain.end(), ca->chain_tail.begin(), ca->chain_tail.end());
  return chain;
}

absl::StatusOr<MintedJwtSvid> CaManager::MintJwtSvid(const JwtSvidParams& params) const {
  SIGIL_RETURN_IF_ERROR(ValidateMemberOf(params.id, options_.trust_domain));
  if (params.audience.empty()) {
    return absl::InvalidArgumentError("audience: at least one audience is required");
  }
  for (const std::string& aud : params.audience) {
    if (aud.empty()) return absl::InvalidArgumentError("audience: audience values must not be empty");
  }
  if (params.ttl < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("ttl: must not be negative");
  }
  const absl::Time now = TruncateToSeconds(clock_->Now());  // before the snapshot, as above
  std::shared_ptr<const ActiveJwt> signer = active_jwt();
  if (now >= signer->not_after) {
    return absl::FailedPreconditionError(
        absl::StrCat("the active JWT authority ", signer->key_id, " expired at ",
                     absl::FormatTime(signer->not_after), "; CA rotation is not running"));
  }
  const absl::Duration ttl =
      params.ttl == absl::ZeroDuration() ? options_.default_jwt_svid_ttl : params.ttl;

  spiffe::JwtSvidClaims claims{params.id, params.audience,
                               TruncateToSeconds(std::min(now + ttl, signer->not_after)), now,
                               options_.jwt_issuer};
  SIGIL_ASSIGN_OR_RETURN(std::string token,
                         spiffe::SignJwtSvid(claims, signer->key, signer->key_id));
  return MintedJwtSvid{std::move(token), claims.issued_at, claims.expiry};
}

// ---- Bundle ----

spiffe::Bundle CaManager::LocalBundle() const {
  spiffe::Bundle bundle(options_.trust_domain);
  const absl::Time now = clock_->Now();
  std::shared_ptr<const LocalAuthorities> local;
  {
    absl::ReaderMutexLock lock(&snapshot_mu_);
    local = local_;
  }
  if (local == nullptr) return bundle;
  for (const auto& [cert, not_after] : local->x509) {
    if (not_after > now) bundle.AddX509Authority(cert);
  }
  for (const spiffe::JwtAuthority& authority : local->jwt) {
    if (authority.expires_at <= now) continue;
    // kids are random and unique; AddJwtAuthority cannot fail here.
    bundle.AddJwtAuthority(authority).IgnoreError();
  }
  return bundle;
}

// ---- localauthority ----

AuthorityState CaManager::X509State(const X509AuthorityRecord& record) const {
  AuthorityState state;
  state.authority_id = record.authority_id();
  state.expires_at = NotAfter(record);
  state.tainted = record.tainted();
  if (!IsSelfSigned(record)) {
    absl::StatusOr<crypto::Certificate> ca = crypto::Certificate::FromDer(record.chain_der(0));
    if (ca.ok()) state.upstream_authority_id = crypto::HexEncode(ca->authority_key_id());
  }
  return state;
}

AuthorityStates CaManager::GetX509AuthorityStates() const {
  absl::ReaderMutexLock lock(&mu_);
  AuthorityStates states;
  if (int i = FindLast(journal_.x509(), ACTIVE); i >= 0) states.active = X509State(journal_.x509(i));
  if (int i = FindLast(journal_.x509(), PREPARED); i >= 0) {
    states.prepared = X509State(journal_.x509(i));
  }
  if (int i = FindLast(journal_.x509(), OLD); i >= 0) states.old = X509State(journal_.x509(i));
  return states;
}

AuthorityStates CaManager::GetJwtAuthorityStates() const {
  absl::ReaderMutexLock lock(&mu_);
  AuthorityStates states;
  if (int i = FindLast(journal_.jwt(), ACTIVE); i >= 0) states.active = JwtState(journal_.jwt(i));
  if (int i = FindLast(journal_.jwt(), PREPARED); i >= 0) states.prepared = JwtState(journal_.jwt(i));
  if (int i = FindLast(journal_.jwt(), OLD); i >= 0) states.old = JwtState(journal_.jwt(i));
  return states;
}

absl::StatusOr<AuthorityState> CaManager::PrepareX509Authority() {
  absl::MutexLock lock(&mu_);
  Txn txn{journal_, {}};
  auto* list = txn.journal.mutable_x509();
  if (int i = FindLast(*list, PREPARED); i >= 0) EraseAt(list, i);
  absl::StatusOr<X509AuthorityRecord> record = NewX509AuthorityLocked(PREPARED, &txn);
  if (!record.ok()) return AbandonLocked(txn, record.status());
  AuthorityState state = X509State(*record);
  *list->Add() = *std::move(record);
  SIGIL_RETURN_IF_ERROR(CommitLocked(std::move(txn)));
  spdlog::info("ca: X.509 authority {} prepared by an operator", state.authority_id);
  return state;
}

absl::StatusOr<AuthorityState> CaManager::PrepareJwtAuthority() {
  absl::MutexLock lock(&mu_);
  Txn txn{journal_, {}};
  auto* list = txn.journal.mutable_jwt();
  if (int i = FindLast(*list, PREPARED); i >= 0) EraseAt(list, i);
  absl::StatusOr<JwtAuthorityRecord> record = NewJwtAuthorityLocked(PREPARED, &txn);
  if (!record.ok()) return AbandonLocked(txn, record.status());
  AuthorityState state = JwtState(*record);
  *list->Add() = *std::move(record);
  SIGIL_RETURN_IF_ERROR(CommitLocked(std::move(txn)));
  spdlog::info("ca: JWT authority {} prepared by an operator", state.authority_id);
  return state;
}

namespace {

// Checks and applies activation of `authority_id` (which must be the prepared
// authority) to `list`. Returns the index of the newly active record.
template <typename R>
absl::StatusOr<int> ActivatePrepared(RepeatedPtrField<R>* list, const std::string& authority_id) {
  if (authority_id.empty()) {
    return absl::InvalidArgumentError("authority_id: no authority ID provided");
  }
  int prepared = FindLast(*list, PREPARED);
  if (prepared < 0) return absl::FailedPreconditionError("no prepared authority");
  if (list->Get(prepared).authority_id() != authority_id) {
    return absl::InvalidArgumentError(absl::StrCat(
        "authority_id: unexpected authority ID \"", authority_id,
        "\"; only the prepared authority \"", list->Get(prepared).authority_id(),
        "\" can be activated"));
  }
  if (int active = FindLast(*list, ACTIVE); active >= 0) list->Mutable(active)->set_status(OLD);
  list->Mutable(prepared)->set_status(ACTIVE);
  return prepared;
}

}  // namespace

absl::StatusOr<AuthorityState> CaManager::ActivateX509Authority(const std::string& authority_id) {
  absl::MutexLock lock(&mu_);
  Txn txn{journal_, {}};
  SIGIL_ASSIGN_OR_RETURN(int index, ActivatePrepared(txn.journal.mutable_x509(), authority_id));
  AuthorityState state = X509State(txn.journal.x509(index));
  SIGIL_RETURN_IF_ERROR(CommitLocked(std::move(txn)));
  spdlog::info("ca: X.509 authority {} activated by an operator", authority_id);
  return state;
}

absl::StatusOr<AuthorityState> CaManager::ActivateJwtAuthority(const std::string& authority_id) {
  absl::MutexLock lock(&mu_);
  Txn txn{journal_, {}};
  SIGIL_ASSIGN_OR_RETURN(int index, ActivatePrepared(txn.journal.mutable_jwt(), authority_id));
  AuthorityState state = JwtState(txn.journal.jwt(index));
  SIGIL_RETURN_IF_ERROR(CommitLocked(std::move(txn)));
  spdlog::info("ca: JWT authority {} activated by an operator", authority_id);
  return state;
}

absl::StatusOr<AuthorityState> CaManager::TaintX509Authority(const std::string& authority_id) {
  if (upstream_ != nullptr) {
    return absl::FailedPreconditionError(
        "local authority can't be tainted if there is an upstream authority");
  }
  absl::MutexLock lock(&mu_);
  Txn txn{journal_, {}};
  SIGIL_ASSIGN_OR_RETURN(int index,
                         FindOldForOperation(txn.journal.x509(), authority_id, "tainted"));
  X509AuthorityRecord* record = txn.journal.mutable_x509(index);
  if (record->tainted()) {
    return absl::FailedPreconditionError(
        absl::StrCat("authority \"", authority_id, "\" is already tainted"));
  }
  record->set_tainted(true);
  AuthorityState state = X509State(*record);
  SIGIL_RETURN_IF_ERROR(CommitLocked(std::move(txn)));
  spdlog::info("ca: X.509 authority {} tainted", authority_id);
  return state;
}

absl::StatusOr<AuthorityState> CaManager::TaintJwtAuthority(const std::string& authority_id) {
  absl::MutexLock lock(&mu_);
  Txn txn{journal_, {}};
  SIGIL_ASSIGN_OR_RETURN(int index,
                         FindOldForOperation(txn.journal.jwt(), authority_id, "tainted"));
  JwtAuthorityRecord* record = txn.journal.mutable_jwt(index);
  if (record->tainted()) {
    return absl::FailedPreconditionError(
        absl::StrCat("authority \"", authority_id, "\" is already tainted"));
  }
  record->set_tainted(true);
  AuthorityState state = JwtState(*record);
  SIGIL_RETURN_IF_ERROR(CommitLocked(std::move(txn)));
  spdlog::info("ca: JWT authority {} tainted", authority_id);
  return state;
}

absl::StatusOr<AuthorityState> CaManager::RevokeX509Authority(const std::string& authority_id) {
  if (upstream_ != nullptr) {
    return absl::FailedPreconditionError(
        "local authority can't be revoked if there is an upstream authority");
  }
  absl::MutexLock lock(&mu_);
  Txn txn{journal_, {}};
  SIGIL_ASSIGN_OR_RETURN(int index,
                         FindOldForOperation(txn.journal.x509(), authority_id, "revoked"));
  if (!txn.journal.x509(index).tainted()) {
    return absl::FailedPreconditionError(
        "only a tainted authority can be revoked; taint it first");
  }
  AuthorityState state = X509State(txn.journal.x509(index));
  EraseAt(txn.journal.mutable_x509(), index);
  SIGIL_RETURN_IF_ERROR(CommitLocked(std::move(txn)));
  spdlog::info("ca: X.509 authority {} revoked", authority_id);
  return state;
}

absl::StatusOr<AuthorityState> CaManager::RevokeJwtAuthority(const std::string& authority_id) {
  absl::MutexLock lock(&mu_);
  Txn txn{journal_, {}};
  SIGIL_ASSIGN_OR_RETURN(int index,
                         FindOldForOperation(txn.journal.jwt(), authority_id, "revoked"));
  if (!txn.journal.jwt(index).tainted()) {
    return absl::FailedPreconditionError(
        "only a tainted authority can be revoked; taint it first");
  }
  AuthorityState state = JwtState(txn.journal.jwt(index));
  EraseAt(txn.journal.mutable_jwt(), index);
  SIGIL_RETURN_IF_ERROR(CommitLocked(std::move(txn)));
  spdlog::info("ca: JWT authority {} revoked", authority_id);
  return state;
}

}  // namespace sigil::ca
