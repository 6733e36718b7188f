#include "apitypes/convert.h"

#include <set>
#include <string>

#include "apitypes/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/util/status_matchers.h"

namespace sigil::apitypes {
namespace {

namespace types = ::spire::api::types;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

types::SPIFFEID IdProto(const std::string& td, const std::string& path) {
  types::SPIFFEID id;
  id.set_trust_domain(td);
  id.set_path(path);
  return id;
}

TEST(ParseTrustDomain, AcceptsNameOrIdOnly) {
  EXPECT_EQ(ParseTrustDomain("example.org")->name(), "example.org");
  EXPECT_EQ(ParseTrustDomain("spiffe://example.org")->name(), "example.org");
  EXPECT_STATUS(
      ParseTrustDomain("spiffe://example.org/path"), absl::StatusCode::kInvalidArgument,
      "\"spiffe://example.org/path\" is not a trust domain name (expected e.g. \"example.org\")");
  EXPECT_STATUS(ParseTrustDomain(""), absl::StatusCode::kInvalidArgument,
                "trust domain cannot be empty");
  EXPECT_STATUS(ParseTrustDomain("Example.org"), absl::StatusCode::kInvalidArgument, "");
}

TEST(SpiffeIdFromProto, ValidIdRoundTrips) {
  ASSERT_OK_AND_ASSIGN(spiffe::SpiffeId id, SpiffeIdFromProto(IdProto("example.org", "/ns/web")));
  EXPECT_EQ(id.ToString(), "spiffe://example.org/ns/web");
  EXPECT_EQ(SpiffeIdToProto(id).SerializeAsString(),
            IdProto("example.org", "/ns/web").SerializeAsString());
}

TEST(SpiffeIdFromProto, TrustDomainMayBeWrittenAsItsId) {
  ASSERT_OK_AND_ASSIGN(spiffe::SpiffeId id,
                       SpiffeIdFromProto(IdProto("spiffe://example.org", "/web")));
  EXPECT_EQ(id.ToString(), "spiffe://example.org/web");
  EXPECT_EQ(SpiffeIdToProto(id).trust_domain(), "example.org");
}

TEST(SpiffeIdFromProto, ReasonsAreTheSpiffeLibrarys) {
  EXPECT_STATUS(SpiffeIdFromProto(IdProto("", "/web")), absl::StatusCode::kInvalidArgument,
                "trust domain is missing");
  EXPECT_STATUS(SpiffeIdFromProto(IdProto("spiffe://example.org/x", "/web")),
                absl::StatusCode::kInvalidArgument, "is not a trust domain name");
  EXPECT_STATUS(SpiffeIdFromProto(IdProto("example.org", "/a//b")),
                absl::StatusCode::kInvalidArgument, "");
  EXPECT_STATUS(SpiffeIdFromProto(IdProto("example.org", "web")),
                absl::StatusCode::kInvalidArgument, "");
}

TEST(SpiffeIdString, JoinsWithoutValidating) {
  EXPECT_EQ(SpiffeIdString(IdProto("example.org", "/web")), "spiffe://example.org/web");
  EXPECT_EQ(SpiffeIdString(IdProto("example.org", "")), "spiffe://example.org");
  EXPECT_EQ(SpiffeIdString(IdProto("", "")), "");
}

TEST(StatusToProto, CarriesCodeAndMessage) {
  types::Status ok = StatusToProto(absl::OkStatus());
  EXPECT_EQ(ok.code(), 0);
  EXPECT_EQ(ok.message(), "OK");
  types::Status denied = StatusToProto(absl::NotFoundError("entry not found"));
  EXPECT_EQ(denied.code(), static_cast<int32_t>(absl::StatusCode::kNotFound));
  EXPECT_EQ(denied.message(), "entry not found");
}

class BundleConvertTest : public testing::BundleProtoTest {};

TEST_F(BundleConvertTest, ProtoRoundTripsThroughSpiffeBundle) {
  ASSERT_OK_AND_ASSIGN(spiffe::Bundle b, BundleFromProto(Proto()));
  EXPECT_EQ(b.trust_domain().name(), "example.org");
  ASSERT_EQ(b.x509_authorities().size(), 1u);
  const spiffe::JwtAuthority* a = b.FindJwtAuthority("kid-a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->public_key, jwt_key_.public_key());
  EXPECT_EQ(a->expires_at, absl::FromUnixSeconds(1767229200));
  EXPECT_EQ(b.refresh_hint(), absl::Seconds(60));
  EXPECT_EQ(b.sequence_number(), 11u);
  EXPECT_EQ(BundleToProto(b).SerializeAsString(), Proto().SerializeAsString());
}

TEST_F(BundleConvertTest, ZeroHintSequenceAndExpiryAreUnset) {
  types::Bundle p = Proto();
  p.set_refresh_hint(0);
  p.set_sequence_number(0);
  p.mutable_jwt_authorities(0)->set_expires_at(0);
  ASSERT_OK_AND_ASSIGN(spiffe::Bundle b, BundleFromProto(p));
  EXPECT_FALSE(b.refresh_hint().has_value());
  EXPECT_FALSE(b.sequence_number().has_value());
  EXPECT_EQ(b.FindJwtAuthority("kid-a")->expires_at, absl::InfinitePast());
  EXPECT_THAT(b.ToSpiffeJson(), Not(HasSubstr("spiffe_sequence")));
  EXPECT_EQ(BundleToProto(b).SerializeAsString(), p.SerializeAsString());
}

TEST_F(BundleConvertTest, BadMaterialIsNamedWithItsBundle) {
  types::Bundle p = Proto();
  p.mutable_x509_authorities(0)->set_asn1("junk");
  EXPECT_STATUS(BundleFromProto(p), absl::StatusCode::kInvalidArgument,
                "bundle example.org: x509_authorities[0]: ");
  p = Proto();
  p.mutable_jwt_authorities(0)->set_public_key("junk");
  EXPECT_STATUS(BundleFromProto(p), absl::StatusCode::kInvalidArgument,
                "bundle example.org: jwt_authorities[0].public_key: ");
  p = Proto();
  p.mutable_jwt_authorities(0)->clear_key_id();
  EXPECT_STATUS(BundleFromProto(p), absl::StatusCode::kInvalidArgument,
                "bundle example.org: jwt_authorities[0]: JWT authority key ID cannot be empty");
  p = Proto();
  p.set_refresh_hint(-1);
  EXPECT_STATUS(BundleFromProto(p), absl::StatusCode::kInvalidArgument,
                "bundle example.org: refresh_hint must not be negative");
  p = Proto();
  p.set_trust_domain("Bad.Org");
  EXPECT_STATUS(BundleFromProto(p), absl::StatusCode::kInvalidArgument,
                "bundle trust_domain \"Bad.Org\": ");
}

TEST_F(BundleConvertTest, TaintedAuthoritiesAreReportedBySubjectKeyId) {
  types::Bundle p = Proto();
  p.mutable_x509_authorities(0)->set_tainted(true);
  std::set<std::string> tainted;
  ASSERT_OK(BundleFromProto(p, &tainted));
  EXPECT_THAT(tainted, ElementsAre(ca_.cert.subject_key_id()));
  EXPECT_FALSE(ca_.cert.subject_key_id().empty());

  tainted.clear();
  ASSERT_OK(BundleFromProto(Proto(), &tainted));
  EXPECT_TRUE(tainted.empty());
  // Without somewhere to put them, tainted marks are simply not reported.
  ASSERT_OK(BundleFromProto(p));
}

}  // namespace
}  // namespace sigil::apitypes
