#include "server/cli/entry_data.h"

#include "apitypes/convert.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/cli/cli_util.h"
#include "spire/api/server/entry/v1/entry.pb.h"

namespace sigil::server::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

namespace types = ::spire::api::types;

// The shape of SPIRE's own test fixture for `entry create -data`.
constexpr char kSpireFile[] = R"({
  "entries": [
    {
      "selectors": [{"type": "unix", "value": "uid:1111"}],
      "spiffe_id": "spiffe://example.org/Blog",
      "parent_id": "spiffe://example.org/spire/agent/join_token/TokenBlog",
      "x509_svid_ttl": 200,
      "jwt_svid_ttl": 30,
      "admin": true
    },
    {
      "selectors": [{"type": "unix", "value": "uid:1111"}],
      "spiffe_id": "spiffe://example.org/Database",
      "parent_id": "spiffe://example.org/spire/agent/join_token/TokenDatabase",
      "x509_svid_ttl": 200,
      "federates_with": ["spiffe://domain.test", "other.test"],
      "dns_names": ["db1", "db2"],
      "entryExpiry": 1767225600,
      "entry_id": "custom",
      "downstream": true,
      "store_svid": true,
      "hint": "external",
      "revision_number": 3
    }
  ]
})";

TEST(ParseEntryData, ReadsSpireFormat) {
  absl::StatusOr<std::vector<types::Entry>> entries = ParseEntryData(kSpireFile);
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->size(), 2u);
  const types::Entry& blog = (*entries)[0];
  EXPECT_EQ(apitypes::SpiffeIdString(blog.spiffe_id()), "spiffe://example.org/Blog");
  EXPECT_EQ(apitypes::SpiffeIdString(blog.parent_id()),
            "spiffe://example.org/spire/agent/join_token/TokenBlog");
  ASSERT_EQ(blog.selectors_size(), 1);
  EXPECT_EQ(blog.selectors(0).type(), "unix");
  EXPECT_EQ(blog.selectors(0).value(), "uid:1111");
  EXPECT_EQ(blog.x509_svid_ttl(), 200);
  EXPECT_EQ(blog.jwt_svid_ttl(), 30);
  EXPECT_TRUE(blog.admin());
  EXPECT_EQ(blog.id(), "");

  const types::Entry& db = (*entries)[1];
  EXPECT_THAT(db.federates_with(), ElementsAre("domain.test", "other.test"));
  EXPECT_THAT(db.dns_names(), ElementsAre("db1", "db2"));
  EXPECT_EQ(db.expires_at(), 1767225600);
  EXPECT_EQ(db.id(), "custom");
  EXPECT_TRUE(db.downstream());
  EXPECT_TRUE(db.store_svid());
  EXPECT_EQ(db.hint(), "external");
  EXPECT_EQ(db.revision_number(), 3);
  EXPECT_FALSE(db.admin());
}

TEST(ParseEntryData, KeysMatchCaseInsensitivelyAndNullIsUnset) {
  absl::StatusOr<std::vector<types::Entry>> entries = ParseEntryData(
      R"({"Entries":[{"SPIFFE_ID":"spiffe://e.org/a","Parent_Id":"spiffe://e.org/p",
          "hint":null,"selectors":null}]})");
  ASSERT_TRUE(entries.ok()) << entries.status();
  EXPECT_EQ(apitypes::SpiffeIdString((*entries)[0].spiffe_id()), "spiffe://e.org/a");
  EXPECT_EQ((*entries)[0].hint(), "");
}

TEST(ParseEntryData, ReadsProtobufJsonOfEntry) {
  // What `entry show -output json` prints for one entry.
  absl::StatusOr<std::vector<types::Entry>> entries = ParseEntryData(
      R"({"entries":[{"id":"e1","spiffe_id":{"trust_domain":"e.org","path":"/a"},
          "parent_id":{"trust_domain":"e.org","path":"/p"},
          "selectors":[{"type":"unix","value":"uid:1"}],"x509_svid_ttl":60,
          "expires_at":"5","revision_number":"2","created_at":"1"},
          {"spiffeId":{"trustDomain":"e.org","path":"/b"},"jwtSvidTtl":9}]})");
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_EQ((*entries)[0].id(), "e1");
  EXPECT_EQ(apitypes::SpiffeIdString((*entries)[0].parent_id()), "spiffe://e.org/p");
  EXPECT_EQ((*entries)[0].x509_svid_ttl(), 60);
  EXPECT_EQ((*entries)[0].expires_at(), 5);
  EXPECT_EQ((*entries)[1].jwt_svid_ttl(), 9);
}

TEST(ParseEntryData, EmptyListIsAllowed) {
  EXPECT_THAT(*ParseEntryData(R"({"entries":[]})"), IsEmpty());
  EXPECT_THAT(*ParseEntryData(R"({})"), IsEmpty());
}

TEST(ParseEntryData, RejectsWithPositionAndReason) {
  struct Case {
    const char* json;
    const char* message;
  };
  const Case cases[] = {
      {"{", "malformed JSON"},
      {"[]", "the entries file must be a JSON object"},
      {R"({"items":[]})", "unknown field \"items\""},
      {R"({"entries":{}})", "\"entries\" must be an array"},
      {R"({"entries":[5]})", "entries[0]: must be an object"},
      {R"({"entries":[{"spiffe_id":"spiffe://e.org/a","parent_id":"spiffe://e.org/p","ttl":3}]})",
       "entries[0]: unknown field \"ttl\""},
      {R"({"entries":[{"parent_id":"spiffe://e.org/p"}]})",
       "entries[0]: SPIFFE ID \"\" is not a valid SPIFFE ID"},
      {R"({"entries":[{"spiffe_id":"spiffe://e.org/a","parent_id":"p"}]})",
       "entries[0]: parent ID \"p\" is not a valid SPIFFE ID"},
      {R"({"entries":[{"spiffe_id":7,"parent_id":"spiffe://e.org/p"}]})",
       "entries[0]: \"spiffe_id\" must be a string"},
      {R"({"entries":[{"spiffe_id":"spiffe://e.org/a","parent_id":"spiffe://e.org/p",
           "x509_svid_ttl":"60"}]})",
       "entries[0]: \"x509_svid_ttl\" must be an integer"},
      {R"({"entries":[{"spiffe_id":"spiffe://e.org/a","parent_id":"spiffe://e.org/p",
           "x509_svid_ttl":1.5}]})",
       "entries[0]: \"x509_svid_ttl\" must be an integer"},
      {R"({"entries":[{"spiffe_id":"spiffe://e.org/a","parent_id":"spiffe://e.org/p",
           "jwt_svid_ttl":3000000000}]})",
       "entries[0]: \"jwt_svid_ttl\" must be between -2147483648 and 2147483647"},
      {R"({"entries":[{"spiffe_id":"spiffe://e.org/a","parent_id":"spiffe://e.org/p",
           "admin":"yes"}]})",
       "entries[0]: \"admin\" must be true or false"},
      {R"({"entries":[{"spiffe_id":"spiffe://e.org/a","parent_id":"spiffe://e.org/p",
           "selectors":[{"type":"unix"},{"type":1,"value":"x"}]}]})",
       "entries[0].selectors[1]: \"type\" must be a string"},
      {R"({"entries":[{"spiffe_id":"spiffe://e.org/a","parent_id":"spiffe://e.org/p",
           "selectors":[{"type":"unix","val":"x"}]}]})",
       "entries[0].selectors[0]: unknown field \"val\""},
      {R"({"entries":[{"spiffe_id":"spiffe://e.org/a","parent_id":"spiffe://e.org/p",
           "dns_names":["a",2]}]})",
       "entries[0].dns_names[1]: must be a string"},
      {R"({"entries":[{"spiffe_id":"spiffe://e.org/a","parent_id":"spiffe://e.org/p",
           "federates_with":["Bad.Org"]}]})",
       "entries[0]: invalid federated trust domain: trust domain \"Bad.Org\" is not valid"},
      {R"({"entries":[{"spiffe_id":{"trust_domain":"e.org"},"bogus":1}]})", "entries[0]: "},
  };
  for (const Case& c : cases) {
    absl::StatusOr<std::vector<types::Entry>> entries = ParseEntryData(c.json);
    EXPECT_EQ(entries.status().code(), absl::StatusCode::kInvalidArgument) << c.json;
    EXPECT_THAT(std::string(entries.status().message()), StartsWith(c.message)) << c.json;
  }
}

TEST(ParseEntryData, ProtobufJsonRejectsUnknownFields) {
  absl::StatusOr<std::vector<types::Entry>> entries =
      ParseEntryData(R"({"entries":[{"spiffe_id":{"trust_domain":"e.org"},"bogus":1}]})");
  EXPECT_THAT(std::string(entries.status().message()), HasSubstr("bogus"));
}

}  // namespace
}  // namespace sigil::server::cli
