#include "server/cli/cli_util.h"

#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "spire/api/server/entry/v1/entry.pb.h"

namespace sigil::server::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

namespace types = ::spire::api::types;

// The JSON printer is common/cli_output.h's; this pins what `-output json`
// prints for the server API's central type, as spire-server does.
TEST(ProtoToJson, EntryUsesProtoNamesSortsKeysAndPrintsDefaults) {
  types::Entry e;
  e.set_id("x");
  e.mutable_spiffe_id()->set_trust_domain("example.org");
  e.set_expires_at(12);
  EXPECT_EQ(ProtoToJson(e),
            "{\"admin\":false,\"created_at\":\"0\",\"dns_names\":[],\"downstream\":false,"
            "\"expires_at\":\"12\",\"federates_with\":[],\"hint\":\"\",\"id\":\"x\","
            "\"jwt_svid_ttl\":0,\"revision_number\":\"0\",\"selectors\":[],"
            "\"spiffe_id\":{\"path\":\"\",\"trust_domain\":\"example.org\"},"
            "\"store_svid\":false,\"x509_svid_ttl\":0}");
}

TEST(Pluralize, OneIsSingular) {
  EXPECT_EQ(Pluralize(0, "entry", "entries"), "0 entries");
  EXPECT_EQ(Pluralize(1, "entry", "entries"), "1 entry");
  EXPECT_EQ(Pluralize(2, "entry", "entries"), "2 entries");
}

TEST(ParseSpiffeIdArg, SplitsValidIds) {
  absl::StatusOr<types::SPIFFEID> id = ParseSpiffeIdArg("SPIFFE ID", "spiffe://example.org/a/b");
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->trust_domain(), "example.org");
  EXPECT_EQ(id->path(), "/a/b");
}

TEST(ParseSpiffeIdArg, NamesWhatIsInvalid) {
  for (const char* bad : {"", "example.org/a", "spiffe://Example.org/a", "spiffe://e.org/a/",
                          "http://e.org/a"}) {
    absl::StatusOr<types::SPIFFEID> id = ParseSpiffeIdArg("parent ID", bad);
    EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(id.status().message()),
                StartsWith("parent ID " + GoQuote(bad) + " is not a valid SPIFFE ID: "))
        << bad;
  }
}

TEST(ParseTrustDomainArg, AcceptsNameOrId) {
  EXPECT_EQ(*ParseTrustDomainArg("example.org"), "example.org");
  EXPECT_EQ(*ParseTrustDomainArg("spiffe://example.org"), "example.org");
  EXPECT_THAT(std::string(ParseTrustDomainArg("spiffe://example.org/x").status().message()),
              HasSubstr("is not a trust domain"));
  EXPECT_THAT(std::string(ParseTrustDomainArg("Example.org").status().message()),
              StartsWith("trust domain \"Example.org\" is not valid: "));
  EXPECT_FALSE(ParseTrustDomainArg("").ok());
}

TEST(ParseSelectorArg, SplitsAtTheFirstColon) {
  absl::StatusOr<types::Selector> s = ParseSelectorArg("unix:uid:1000");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->type(), "unix");
  EXPECT_EQ(s->value(), "uid:1000");
  s = ParseSelectorArg("k8s:");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->value(), "");
  EXPECT_EQ(ParseSelectorArg("unix").status().message(),
            "selector \"unix\" must be formatted as type:value");
}

TEST(PrintEntry, MinimalEntry) {
  types::Entry e;
  e.mutable_spiffe_id()->set_trust_domain("example.org");
  e.mutable_spiffe_id()->set_path("/web");
  std::ostringstream out;
  PrintEntry(e, out);
  EXPECT_EQ(out.str(),
            "Entry ID         : (none)\n"
            "SPIFFE ID        : spiffe://example.org/web\n"
            "Parent ID        : \n"
            "Revision         : 0\n"
            "X509-SVID TTL    : default\n"
            "JWT-SVID TTL     : default\n"
            "\n");
}

TEST(PrintEntry, EveryAttribute) {
  types::Entry e;
  e.set_id("id-1");
  e.mutable_spiffe_id()->set_trust_domain("example.org");
  e.mutable_spiffe_id()->set_path("/db");
  e.mutable_parent_id()->set_trust_domain("example.org");
  e.mutable_parent_id()->set_path("/spire/server");
  e.set_revision_number(4);
  e.set_downstream(true);
  e.set_x509_svid_ttl(60);
  e.set_jwt_svid_ttl(30);
  e.set_expires_at(1767225600);
  auto* s = e.add_selectors();
  s->set_type("unix");
  s->set_value("uid:0");
  e.add_federates_with("other.org");
  e.add_dns_names("db.local");
  e.set_admin(true);
  e.set_store_svid(true);
  e.set_hint("primary");
  std::ostringstream out;
  PrintEntry(e, out);
  EXPECT_EQ(out.str(),
            "Entry ID         : id-1\n"
            "SPIFFE ID        : spiffe://example.org/db\n"
            "Parent ID        : spiffe://example.org/spire/server\n"
            "Revision         : 4\n"
            "Downstream       : true\n"
            "X509-SVID TTL    : 60\n"
            "JWT-SVID TTL     : 30\n"
            "Expiration time  : 2026-01-01 00:00:00 +0000 UTC\n"
            "Selector         : unix:uid:0\n"
            "FederatesWith    : other.org\n"
            "DNS name         : db.local\n"
            "Admin            : true\n"
            "StoreSvid        : true\n"
            "Hint             : primary\n"
            "\n");
}

}  // namespace
}  // namespace sigil::server::cli
