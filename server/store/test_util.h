#pragma once

// Test-only helpers shared by store_test and server_api_test (not part of
// sigil_server_store): status assertions, entries, certificates and keys
// generated at test time.

#include <stdlib.h>

#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "spiffe/crypto/certificate.h"
#include "spiffe/crypto/key.h"
#include "spiffe/crypto/x509_builder.h"
#include "spire/api/types/bundle.pb.h"
#include "spire/api/types/entry.pb.h"

#define SIGIL_STORE_TEST_CONCAT_INNER(a, b) a##b
#define SIGIL_STORE_TEST_CONCAT(a, b) SIGIL_STORE_TEST_CONCAT_INNER(a, b)

// ASSERTs that a StatusOr is OK, then moves its value into `lhs`.
#define ASSERT_OK_AND_ASSIGN(lhs, rexpr)                                                   \
  ASSERT_OK_AND_ASSIGN_IMPL(SIGIL_STORE_TEST_CONCAT(statusor_, __LINE__), lhs, rexpr)
#define ASSERT_OK_AND_ASSIGN_IMPL(statusor, lhs, rexpr)       \
  auto statusor = (rexpr);                                    \
  ASSERT_TRUE(statusor.ok()) << statusor.status().ToString(); \
  lhs = std::move(statusor).value()

#define EXPECT_OK(expr)                                                      \
  do {                                                                       \
    ::absl::Status sigil_s_ = ::sigil::server::testing::StatusOf(expr);      \
    EXPECT_TRUE(sigil_s_.ok()) << sigil_s_.ToString();                       \
  } while (false)
#define ASSERT_OK(expr)                                                      \
  do {                                                                       \
    ::absl::Status sigil_s_ = ::sigil::server::testing::StatusOf(expr);      \
    ASSERT_TRUE(sigil_s_.ok()) << sigil_s_.ToString();                       \
  } while (false)

// EXPECTs that a Status (or StatusOr) failed with `code` and a message
// containing `substr`.
#define EXPECT_STATUS(expr, code, substr) \
  ::sigil::server::testing::ExpectStatus(::sigil::server::testing::StatusOf(expr), code, substr)

namespace sigil::server::testing {

inline absl::Status StatusOf(const absl::Status& s) { return s; }
template <typename T>
absl::Status StatusOf(const absl::StatusOr<T>& s) {
  return s.status();
}

inline void ExpectStatus(const absl::Status& s, absl::StatusCode code, absl::string_view substr) {
  EXPECT_EQ(s.code(), code) << s.ToString();
  EXPECT_NE(s.message().find(substr), absl::string_view::npos)
      << "message \"" << s.message() << "\" lacks \"" << substr << "\"";
}

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

// A fresh directory under $TMPDIR (or /tmp); removed by the caller.
inline std::string MakeTempDir(const std::string& name) {
  const char* base = getenv("TMPDIR");
  std::string templ = absl::StrCat(base != nullptr ? base : "/tmp", "/", name, "-XXXXXX");
  char* made = mkdtemp(templ.data());
  EXPECT_NE(made, nullptr);
  return templ;
}

}  // namespace sigil::server::testing
