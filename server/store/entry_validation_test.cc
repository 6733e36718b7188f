#include "server/store/entry_validation.h"

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "server/store/test_util.h"

namespace sigil::server {
namespace {

namespace types = ::spire::api::types;
using ::sigil::server::testing::Id;
using ::sigil::server::testing::MakeEntry;
using ::testing::ElementsAre;

class EntryValidationTest : public ::testing::Test {
 protected:
  absl::StatusOr<types::Entry> Validate(const types::Entry& e,
                                        const types::EntryMask* mask = nullptr) {
    return ValidateEntry(e, td_, mask);
  }
  types::Entry Good() { return MakeEntry("/web", "/spire/agent/join_token/t", {"unix:uid:1000"}); }

  spiffe::TrustDomain td_ = spiffe::TrustDomain::FromString("example.org").value();
};

TEST_F(EntryValidationTest, AcceptsAWellFormedEntry) {
  types::Entry e = Good();
  e.set_id("abc");
  e.set_x509_svid_ttl(3600);
  e.set_jwt_svid_ttl(300);
  e.add_dns_names("web.example.org");
  e.add_dns_names("*.svc.example.org");
  e.set_hint(std::string(kMaxHintLength, 'h'));
  e.set_expires_at(1);
  EXPECT_OK(Validate(e));
}

TEST_F(EntryValidationTest, NormalizesIdsAndFederatesWith) {
  types::Entry e = Good();
  e.mutable_spiffe_id()->set_trust_domain("spiffe://example.org");
  e.add_federates_with("spiffe://a.org");
  e.add_federates_with("a.org");
  e.add_federates_with("b.org");
  ASSERT_OK_AND_ASSIGN(types::Entry out, Validate(e));
  EXPECT_EQ(out.spiffe_id().trust_domain(), "example.org");
  EXPECT_THAT(out.federates_with(), ElementsAre("a.org", "b.org"));
}

TEST_F(EntryValidationTest, RejectsMalformedEntryId) {
  types::Entry e = Good();
  e.set_id("a/b");
  EXPECT_STATUS(Validate(e), absl::StatusCode::kInvalidArgument, "invalid id: entry ID contains");
  e.set_id(std::string(256, 'x'));
  EXPECT_STATUS(Validate(e), absl::StatusCode::kInvalidArgument, "invalid id: entry ID is 256");
}

TEST_F(EntryValidationTest, RejectsMissingSpiffeId) {
  types::Entry e = Good();
  e.clear_spiffe_id();
  EXPECT_STATUS(Validate(e), absl::StatusCode::kInvalidArgument, "invalid spiffe_id: missing");
}

TEST_F(EntryValidationTest, RejectsMalformedSpiffeId) {
  types::Entry e = Good();
  *e.mutable_spiffe_id() = Id("example.org", "/a//b");
  EXPECT_STATUS(Validate(e), absl::StatusCode::kInvalidArgument, "invalid spiffe_id: ");
  *e.mutable_spiffe_id() = Id("Example.org", "/a");
  EXPECT_STATUS(Validate(e), absl::StatusCode::kInvalidArgument, "invalid spiffe_id: ");
  *e.mutable_spiffe_id() = Id("spiffe://example.org/x", "/a");
  EXPECT_STATUS(Validate(e), absl::StatusCode::kInvalidArgument,
                "invalid spiffe_id: \"spiffe://example.org/x\" is not a trust domain name");
}

TEST_F(EntryValidationTest, RejectsSpiffeIdOfAnotherTrustDomain) {
  types::Entry e = Good();
  *e.mutable_spiffe_id() = Id("other.org", "/web");
  EXPECT_STATUS(Validate(e), absl::StatusCode::kInvalidArgument,
                "invalid spiffe_id: \"spiffe://other.org/web\" is not a member of trust domain "
                "\"example.org\"");
}

TEST_F(EntryValidationTest, RejectsSpiffeIdWithoutPath) {
  types::Entry e = Good();
  *e.mutable_spiffe_id() = Id("example.org", "");
  EXPECT_STATUS(Validate(e), absl::StatusCode::kInvalidArgument,
                "invalid spiffe_id: \"spiffe://example.org\" has an empty path");
}

TEST_F(EntryValidationTest, RejectsSpiffeIdInReservedNamespace) {
  types::Entry e = Good();
  *e.mutable_spiffe_id() = Id("example.org", "/spire/agent/x");
  EXPECT_STATUS(Validate(e), absl::StatusCode::kInvalidArgument,
                "invalid spiffe_id: \"spiffe://example.org/spire/agent/x\" is in the reserved");
  *e.mutable_spiffe_id() = Id("example.org", "/spire");
  EXPECT_STATUS(Validate(e), absl::StatusCode::kInvalidArgument, "reserved namespace");
  // Only the whole segment is reserved.
  *e.mutable_spiffe_id() = Id("example.org", "/spireish");
  EXPECT_OK(Validate(e));
}

TEST_F(EntryValidationTest, RejectsBadParentId) {
  types::Entry e = Good();
  e.clear_parent_id();
  EXPECT_STATUS(Validate(e), absl::StatusCode::kInvalidArgument, "invalid parent_id: missing");
  *e.mutable_parent_id() = Id("other.org", "/x");
  EXPECT_STATUS(Validate(e), absl::StatusCode::kInvalidArgument,
                "invalid parent_id: \"spiffe://other.org/x\" is not a member");
  *e.mutable_parent_id() = Id("example.org", "");
  EXPECT_STATUS(Validate(e), absl::StatusCode::kInvalidArgument,
                "invalid parent_id: \"spiffe://example.org\" has an empty path");
  *e.mutable_parent_id() = Id("example.org", "/a/");
  EXPECT_STATUS(Validate(e), absl::StatusCode::kInvalidArgument, "invalid parent_id: ");
}

TEST_F(EntryValidationTest, RejectsBadSelectors) {
  types::Entry e = Good();
  e.clear_selectors();
  EXPECT_STATUS(Validate(e), absl::StatusCode::kInvalidArgument,
                "invalid selectors: at least one selector is required");
  e = Good();
  e.add_selectors()->set_value("x");
  EXPECT_STATUS(Validate(e), absl::StatusCode::kInvalidArgument,
                "invalid selectors[1]: missing selector type");
  e = Good();
  e.mutable_selectors(0)->set_type("a:b");
  EXPECT_STATUS(Validate(e), absl::StatusCode::kInvalidArgument,
                "invalid selectors[0]: selector type \"a:b\" contains ':'");
  e = Good();
  e.mutable_selectors(0)->clear_value();
  EXPECT_STATUS(Validate(e), absl::StatusCode::kInvalidArgument,
                "invalid selectors[0]: missing selector value");
}

TEST_F(EntryValidationTest, StoreSvidNeedsSelectorsOfOneType) {
  types::Entry e = MakeEntry("/web", "/spire/agent/x", {"unix:uid:1", "k8s:ns:a"});
  e.set_store_svid(true);
  EXPECT_STATUS(Validate(e), absl::StatusCode::kInvalidArgument,
                "invalid selectors: selector types must all be the same when store_svid is set");
  e.set_store_svid(false);
  EXPECT_OK(Validate(e));
}

TEST_F(EntryValidationTest, RejectsNegativeTtlsAndExpiry) {
  types::Entry e = Good();
  e.set_x509_svid_ttl(-1);
  EXPECT_STATUS(Validate(e), absl::StatusCode::kInvalidArgument, "invalid x509_svid_ttl: -1");
  e = Good();
  e.set_jwt_svid_ttl(-5);
  EXPECT_STATUS(Validate(e), absl::StatusCode::kInvalidArgument, "invalid jwt_svid_ttl: -5");
  e = Good();
  e.set_expires_at(-2);
  EXPECT_STATUS(Validate(e), absl::StatusCode::kInvalidArgument, "invalid expires_at: -2");
}

TEST_F(EntryValidationTest, RejectsBadDnsNames) {
  for (const char* bad : {"", "-a.org", "a-.org", "a..org", "a_b.org", "a.*.org", "a.org."}) {
    types::Entry e = Good();
    e.add_dns_names("ok.org");
    e.add_dns_names(bad);
    SCOPED_TRACE(bad);
    EXPECT_STATUS(Validate(e), absl::StatusCode::kInvalidArgument, "invalid dns_names[1]: ");
  }
  types::Entry e = Good();
  e.add_dns_names(std::string(64, 'a') + ".org");
  EXPECT_STATUS(Validate(e), absl::StatusCode::kInvalidArgument, "invalid dns_names[0]: ");
  e = Good();
  std::string long_name;
  for (int i = 0; i < 5; ++i) long_name += std::string(60, 'a') + ".";
  long_name += "org";
  e.add_dns_names(long_name);
  EXPECT_STATUS(Validate(e), absl::StatusCode::kInvalidArgument, "longer than 253 characters");
}

TEST_F(EntryValidationTest, RejectsBadFederatesWith) {
  types::Entry e = Good();
  e.add_federates_with("a.org");
  e.add_federates_with("Not Valid");
  EXPECT_STATUS(Validate(e), absl::StatusCode::kInvalidArgument, "invalid federates_with[1]: ");
}

TEST_F(EntryValidationTest, RejectsLongHint) {
  types::Entry e = Good();
  e.set_hint(std::string(kMaxHintLength + 1, 'h'));
  EXPECT_STATUS(Validate(e), absl::StatusCode::kInvalidArgument,
                "invalid hint: is 1025 characters; the limit is 1024");
}

TEST_F(EntryValidationTest, MaskLimitsWhatIsChecked) {
  types::Entry e;
  e.set_id("x");
  e.set_hint("ok");
  types::EntryMask mask;
  mask.set_hint(true);
  EXPECT_OK(Validate(e, &mask));
  mask.set_selectors(true);
  EXPECT_STATUS(Validate(e, &mask), absl::StatusCode::kInvalidArgument, "invalid selectors: ");
}

TEST(ReservedPaths, AgentAndReservedNamespaces) {
  EXPECT_TRUE(IsReservedPath("/spire"));
  EXPECT_TRUE(IsReservedPath("/spire/server"));
  EXPECT_FALSE(IsReservedPath("/spires"));
  EXPECT_TRUE(IsAgentPath("/spire/agent/join_token/x"));
  EXPECT_FALSE(IsAgentPath("/spire/agent"));
  EXPECT_FALSE(IsAgentPath("/spire/server"));
}

}  // namespace
}  // namespace sigil::server
