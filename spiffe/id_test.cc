#include "spiffe/id.h"

#include <set>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sigil::spiffe {
namespace {

using ::testing::HasSubstr;

constexpr char kTdChars[] = "trust domain characters are limited to lowercase letters";
constexpr char kPathChars[] = "path segment characters are limited to letters";

struct AcceptCase {
  std::string input;
  std::string trust_domain;
  std::string path;
};

struct RejectCase {
  std::string input;
  std::string message;
};

std::string PrintInput(const std::string& s) {
  return s.size() > 60 ? s.substr(0, 60) + "...(" + std::to_string(s.size()) + " bytes)" : s;
}

TEST(SpiffeId, AcceptsValidIds) {
  const std::string td255(255, 'a');
  const std::string long_path = "/" + std::string(2048 - 9 - 11 - 1, 'x');  // total 2048
  const std::vector<AcceptCase> cases = {
      {"spiffe://example.org", "example.org", ""},
      {"spiffe://example.org/workload", "example.org", "/workload"},
      {"spiffe://example.org/ns/prod/sa/web", "example.org", "/ns/prod/sa/web"},
      {"spiffe://a", "a", ""},
      {"spiffe://my-domain_1.example.org/x", "my-domain_1.example.org", "/x"},
      {"spiffe://0123456789/x", "0123456789", "/x"},
      {"spiffe://example.org/AZaz09.-_", "example.org", "/AZaz09.-_"},
      {"spiffe://example.org/...", "example.org", "/..."},
      {"spiffe://example.org/.a/a./..b", "example.org", "/.a/a./..b"},
      {"spiffe://example.org/UPPER/Case", "example.org", "/UPPER/Case"},
      {"spiffe://" + td255, td255, ""},
      {"spiffe://" + td255 + "/p", td255, "/p"},
      {"spiffe://example.org" + long_path, "example.org", long_path},
  };
  for (const AcceptCase& c : cases) {
    SCOPED_TRACE(PrintInput(c.input));
    absl::StatusOr<SpiffeId> id = SpiffeId::FromString(c.input);
    ASSERT_TRUE(id.ok()) << id.status();
    EXPECT_EQ(id->trust_domain().name(), c.trust_domain);
    EXPECT_EQ(id->path(), c.path);
    EXPECT_EQ(id->ToString(), c.input);
  }
}

TEST(SpiffeId, RejectsEveryRuleWithItsOwnMessage) {
  const std::vector<RejectCase> cases = {
      // Empty.
      {"", "cannot be empty"},
      // Scheme: exactly "spiffe://", case-sensitive.
      {"example.org/workload", "scheme is missing or invalid"},
      {"SPIFFE://example.org/workload", "scheme is missing or invalid"},
      {"Spiffe://example.org", "scheme is missing or invalid"},
      {"https://example.org/workload", "scheme is missing or invalid"},
      {"spiffe:/example.org", "scheme is missing or invalid"},
      {"spiffe:example.org", "scheme is missing or invalid"},
      {"spiffe//example.org", "scheme is missing or invalid"},
      {" spiffe://example.org", "scheme is missing or invalid"},
      {"://example.org", "scheme is missing or invalid"},
      // Missing trust domain.
      {"spiffe://", "trust domain is missing"},
      {"spiffe:///workload", "trust domain is missing"},
      {"spiffe:///", "trust domain is missing"},
      // Trust domain characters.
      {"spiffe://Example.org", "trust domain must be lowercase"},
      {"spiffe://EXAMPLE.ORG/w", "trust domain must be lowercase"},
      {"spiffe://exa mple.org", kTdChars},
      {"spiffe://example.org\t", kTdChars},
      {"spiffe://ex$ample.org", kTdChars},
      {"spiffe://ex+ample.org", kTdChars},
      {"spiffe://ex~ample.org", kTdChars},
      {"spiffe://ex!ample.org", kTdChars},
      {"spiffe://[::1]", "trust domain must not contain a port"},
      {"spiffe://ex\xc3\xa9mple.org", kTdChars},
      {std::string("spiffe://ex\0ample.org", 21), kTdChars},
      // Port and userinfo.
      {"spiffe://example.org:8080/workload", "trust domain must not contain a port"},
      {"spiffe://example.org:/w", "trust domain must not contain a port"},
      {"spiffe://user@example.org/workload", "trust domain must not contain userinfo"},
      {"spiffe://user:pass@example.org", "trust domain must not contain userinfo"},
      // Percent-encoding, in the trust domain and in the path.
      {"spiffe://ex%61mple.org", "trust domain must not contain percent-encoding"},
      {"spiffe://example.org/w%20x", "path must not contain percent-encoding"},
      {"spiffe://example.org/%2e%2e", "path must not contain percent-encoding"},
      // Query and fragment, after the path or straight after the trust domain.
      {"spiffe://example.org/workload?x=1", "must not contain a query"},
      {"spiffe://example.org?x=1", "must not contain a query"},
      {"spiffe://example.org/?", "must not contain a query"},
      {"spiffe://example.org/workload#frag", "must not contain a fragment"},
      {"spiffe://example.org#frag", "must not contain a fragment"},
      // Empty segments.
      {"spiffe://example.org//workload", "path must not contain empty segments"},
      {"spiffe://example.org/a//b", "path must not contain empty segments"},
      {"spiffe://example.org//", "path must not contain empty segments"},
      // Dot segments.
      {"spiffe://example.org/.", "path must not contain '.' or '..' segments"},
      {"spiffe://example.org/..", "path must not contain '.' or '..' segments"},
      {"spiffe://example.org/./a", "path must not contain '.' or '..' segments"},
      {"spiffe://example.org/a/../b", "path must not contain '.' or '..' segments"},
      {"spiffe://example.org/a/.", "path must not contain '.' or '..' segments"},
      // Trailing slash.
      {"spiffe://example.org/", "path must not have a trailing slash"},
      {"spiffe://example.org/workload/", "path must not have a trailing slash"},
      // Path characters.
      {"spiffe://example.org/work load", kPathChars},
      {"spiffe://example.org/a:b", kPathChars},
      {"spiffe://example.org/a@b", kPathChars},
      {"spiffe://example.org/a~b", kPathChars},
      {"spiffe://example.org/a+b", kPathChars},
      {"spiffe://example.org/a\\b", kPathChars},
      {"spiffe://example.org/\xc3\xa9", kPathChars},
      {"spiffe://example.org/a\n", kPathChars},
      // Lengths.
      {"spiffe://" + std::string(256, 'a'), "trust domain is longer than 255 bytes"},
      {"spiffe://" + std::string(256, 'a') + "/w", "trust domain is longer than 255 bytes"},
      {"spiffe://example.org/" + std::string(2048 - 21 + 1, 'x'),
       "SPIFFE ID is longer than 2048 bytes"},
  };
  for (const RejectCase& c : cases) {
    SCOPED_TRACE(PrintInput(c.input));
    absl::StatusOr<SpiffeId> id = SpiffeId::FromString(c.input);
    ASSERT_FALSE(id.ok()) << id->ToString();
    EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(id.status().message(), HasSubstr(c.message));
  }
}

TEST(SpiffeId, EachRuleHasADistinctMessage) {
  const std::vector<std::string> one_violation_each = {
      "",
      "SPIFFE://example.org",
      "spiffe:///w",
      "spiffe://Example.org",
      "spiffe://ex$ample.org",
      "spiffe://example.org:1",
      "spiffe://u@example.org",
      "spiffe://ex%41mple.org",
      "spiffe://example.org/a%41",
      "spiffe://example.org/a?b",
      "spiffe://example.org/a#b",
      "spiffe://example.org/a//b",
      "spiffe://example.org/a/..",
      "spiffe://example.org/a/",
      "spiffe://example.org/a$",
      "spiffe://" + std::string(300, 'a'),
      "spiffe://example.org/" + std::string(3000, 'a'),
  };
  std::set<std::string> rules;
  for (const std::string& input : one_violation_each) {
    absl::StatusOr<SpiffeId> id = SpiffeId::FromString(input);
    ASSERT_FALSE(id.ok()) << PrintInput(input);
    std::string message(id.status().message());
    // Strip the quoted input so only the rule is compared.
    rules.insert(message.substr(message.rfind(": ") + 2));
  }
  EXPECT_EQ(rules.size(), one_violation_each.size());
}

TEST(SpiffeId, ErrorMessageQuotesInputTruncatedAndEscaped) {
  absl::StatusOr<SpiffeId> id = SpiffeId::FromString("spiffe://example.org/a\n/" +
                                                     std::string(500, 'b'));
  ASSERT_FALSE(id.ok());
  EXPECT_THAT(id.status().message(), HasSubstr("\"spiffe://example.org/a\\n/bbb"));
  EXPECT_THAT(id.status().message(), HasSubstr("(524 bytes)"));
  EXPECT_LT(id.status().message().size(), 300u);
}

TEST(SpiffeId, TrustDomainOf255BytesAndIdOf2048BytesAreTheLimits) {
  EXPECT_TRUE(SpiffeId::FromString("spiffe://" + std::string(255, 'a')).ok());
  EXPECT_FALSE(SpiffeId::FromString("spiffe://" + std::string(256, 'a')).ok());
  std::string prefix = "spiffe://example.org/";
  EXPECT_TRUE(SpiffeId::FromString(prefix + std::string(2048 - prefix.size(), 'x')).ok());
  EXPECT_FALSE(SpiffeId::FromString(prefix + std::string(2049 - prefix.size(), 'x')).ok());
}

TEST(SpiffeId, FromPathBuildsTheId) {
  TrustDomain td = TrustDomain::FromString("example.org").value();
  absl::StatusOr<SpiffeId> id = SpiffeId::FromPath(td, "/ns/prod");
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->ToString(), "spiffe://example.org/ns/prod");
  EXPECT_EQ(id->path(), "/ns/prod");
  absl::StatusOr<SpiffeId> root = SpiffeId::FromPath(td, "");
  ASSERT_TRUE(root.ok()) << root.status();
  EXPECT_EQ(root->ToString(), "spiffe://example.org");
}

TEST(SpiffeId, FromPathRejectsBadPaths) {
  TrustDomain td = TrustDomain::FromString("example.org").value();
  const std::vector<RejectCase> cases = {
      {"workload", "path must be empty or start with '/'"},
      {"/", "path must not have a trailing slash"},
      {"/a//b", "path must not contain empty segments"},
      {"/a/..", "path must not contain '.' or '..' segments"},
      {"/a/./b", "path must not contain '.' or '..' segments"},
      {"/a?b", "must not contain a query"},
      {"/a#b", "must not contain a fragment"},
      {"/a%20", "path must not contain percent-encoding"},
      {"/a b", kPathChars},
      {"/" + std::string(2048, 'x'), "SPIFFE ID is longer than 2048 bytes"},
  };
  for (const RejectCase& c : cases) {
    SCOPED_TRACE(PrintInput(c.input));
    absl::StatusOr<SpiffeId> id = SpiffeId::FromPath(td, c.input);
    ASSERT_FALSE(id.ok());
    EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(id.status().message(), HasSubstr(c.message));
  }
}

TEST(SpiffeId, ValidatePathAcceptsEmptyAndWellFormedPaths) {
  EXPECT_TRUE(ValidatePath("").ok());
  EXPECT_TRUE(ValidatePath("/a").ok());
  EXPECT_TRUE(ValidatePath("/a/b.c/D-E_f").ok());
}

TEST(SpiffeId, ValidatePathRejectsWithPathMessages) {
  const std::vector<RejectCase> cases = {
      {"a/b", "path must be empty or start with '/'"},
      {"/a/", "path must not have a trailing slash"},
      {"//", "path must not contain empty segments"},
      {"/..", "path must not contain '.' or '..' segments"},
      {"/a*", kPathChars},
  };
  for (const RejectCase& c : cases) {
    SCOPED_TRACE(c.input);
    absl::Status s = ValidatePath(c.input);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(s.message(), HasSubstr("invalid SPIFFE ID path"));
    EXPECT_THAT(s.message(), HasSubstr(c.message));
  }
}

TEST(SpiffeId, MemberOfComparesTrustDomains) {
  SpiffeId id = SpiffeId::FromString("spiffe://example.org/w").value();
  EXPECT_TRUE(id.MemberOf(TrustDomain::FromString("example.org").value()));
  EXPECT_FALSE(id.MemberOf(TrustDomain::FromString("example.com").value()));
}

TEST(SpiffeId, EqualityOrderingAndHashing) {
  SpiffeId a = SpiffeId::FromString("spiffe://example.org/a").value();
  SpiffeId a2 = SpiffeId::FromString("spiffe://example.org/a").value();
  SpiffeId b = SpiffeId::FromString("spiffe://example.org/b").value();
  SpiffeId other_td = SpiffeId::FromString("spiffe://example.com/a").value();
  EXPECT_EQ(a, a2);
  EXPECT_NE(a, b);
  EXPECT_NE(a, other_td);
  EXPECT_LT(a, b);
  EXPECT_LT(other_td, a);
  absl::flat_hash_set<SpiffeId> set = {a, a2, b, other_td};
  EXPECT_EQ(set.size(), 3u);
}

TEST(TrustDomain, AcceptsBareNamesAndUris) {
  const std::vector<AcceptCase> cases = {
      {"example.org", "example.org", ""},
      {"a", "a", ""},
      {"my_td-1.local", "my_td-1.local", ""},
      {"spiffe://example.org", "example.org", ""},
      {"spiffe://example.org/some/workload", "example.org", ""},
      {std::string(255, 'z'), std::string(255, 'z'), ""},
  };
  for (const AcceptCase& c : cases) {
    SCOPED_TRACE(PrintInput(c.input));
    absl::StatusOr<TrustDomain> td = TrustDomain::FromString(c.input);
    ASSERT_TRUE(td.ok()) << td.status();
    EXPECT_EQ(td->name(), c.trust_domain);
    EXPECT_EQ(td->IdString(), "spiffe://" + c.trust_domain);
  }
}

TEST(TrustDomain, RejectsEveryRuleWithItsOwnMessage) {
  const std::vector<RejectCase> cases = {
      {"", "trust domain cannot be empty"},
      {"Example.org", "trust domain must be lowercase"},
      {"example.org:8080", "trust domain must not contain a port"},
      {"user@example.org", "trust domain must not contain userinfo"},
      {"ex%41mple.org", "trust domain must not contain percent-encoding"},
      {"example.org/path", kTdChars},
      {"exa mple.org", kTdChars},
      {"example.org?q", kTdChars},
      {std::string(256, 'a'), "trust domain is longer than 255 bytes"},
      // URIs go through the SPIFFE ID rules.
      {"https://example.org", "scheme is missing or invalid"},
      {"SPIFFE://example.org", "scheme is missing or invalid"},
      {"spiffe://", "trust domain is missing"},
      {"spiffe://Example.org", "trust domain must be lowercase"},
      {"spiffe://example.org:443", "trust domain must not contain a port"},
      {"spiffe://example.org/", "path must not have a trailing slash"},
  };
  for (const RejectCase& c : cases) {
    SCOPED_TRACE(PrintInput(c.input));
    absl::StatusOr<TrustDomain> td = TrustDomain::FromString(c.input);
    ASSERT_FALSE(td.ok()) << td->name();
    EXPECT_EQ(td.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(td.status().message(), HasSubstr(c.message));
  }
}

TEST(TrustDomain, EqualityOrderingAndHashing) {
  TrustDomain a = TrustDomain::FromString("a.org").value();
  TrustDomain a2 = TrustDomain::FromString("spiffe://a.org/x").value();
  TrustDomain b = TrustDomain::FromString("b.org").value();
  EXPECT_EQ(a, a2);
  EXPECT_NE(a, b);
  EXPECT_LT(a, b);
  absl::flat_hash_set<TrustDomain> set = {a, a2, b};
  EXPECT_EQ(set.size(), 2u);
}

}  // namespace
}  // namespace sigil::spiffe
