#pragma once

// Test-only helpers shared by store_test and server_api_test (not part of
// sigil_server_store): entries, certificates and keys generated at test
// time. Status assertions and temporary directories come from tests/util/.

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "spiffe/crypto/certificate.h"
#include "spiffe/crypto/key.h"
#include "spiffe/crypto/x509_builder.h"
#include "spire/api/types/bundle.pb.h"
#include "spire/api/types/entry.pb.h"
#include "tests/util/files.h"
#include "tests/util/status_matchers.h"

namespace sigil::server::testing {

using ::sigil::testing::MakeTempDir;

inline spire::api::types::SPIFFEID Id(const std::string& td, const std::string& path) {
  spire::api::types::SPIFFEID id;
  id.set_trust_domain(td);
  id.set_path(path);
  return id;
}

// An entry of example.org with the given paths and "type:value" selectors.
inline spire::api::types::Entry MakeEntry(const std::string& path, const std::string& parent_path,
                                          const std::vector<std::string>& selectors) {
  spire::api::types::Entry e;
  *e.mutable_spiffe_id() = Id("example.org", path);
  *e.mutable_parent_id() = Id("example.org", parent_path);
  for (const std::string& s : selectors) {
    size_t colon = s.find(':');
    auto* sel = e.add_selectors();
    sel->set_type(s.substr(0, colon));
    sel->set_value(colon == std::string::npos ? "" : s.substr(colon + 1));
  }
  return e;
}

// A self-signed CA certificate valid from `not_before` to `not_after`.
inline crypto::Certificate MakeCaCert(absl::Time not_before, absl::Time not_after) {
  static const crypto::PrivateKey* key =
      new crypto::PrivateKey(crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value());
  crypto::CertificateTemplate t;
  t.serial = crypto::RandomSerial();
  t.subject = {{crypto::NameAttribute::kCountry, "US"},
               {crypto::NameAttribute::kOrganization, "SPIFFE"}};
  t.not_before = not_before;
  t.not_after = not_after;
  t.is_ca = true;
  t.key_usage = crypto::kKeyUsageKeyCertSign | crypto::kKeyUsageCrlSign;
  t.uri_sans = {"spiffe://example.org"};
  return crypto::SelfSign(t, *key).value();
}

// A JWT authority with a fresh P-256 key.
inline spire::api::types::JWTKey MakeJwtKey(const std::string& kid, int64_t expires_at = 0) {
  spire::api::types::JWTKey k;
  k.set_key_id(kid);
  k.set_public_key(
      crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value().public_key().spki_der());
  k.set_expires_at(expires_at);
  return k;
}

}  // namespace sigil::server::testing
