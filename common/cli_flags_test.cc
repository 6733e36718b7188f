#include "common/cli_flags.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sigil::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// A flag set shaped like "entry create".
struct EntryFlags {
  EntryFlags() : fs("entry create") {
    fs.String("spiffeID", &spiffe_id, "", "The SPIFFE ID that this record represents");
    fs.String("socketPath", &socket_path, "/tmp/sigil-server/private/api.sock",
              "Path to the server API socket");
    fs.Int("x509SVIDTTL", &ttl, 0, "X509-SVID lifetime in seconds");
    fs.Int("tokenTTL", &token_ttl, 600, "Token TTL in seconds");
    fs.Bool("admin", &admin, false, "Grant admin");
    fs.Bool("node", &node, false, "Node entry");
    fs.StringList("selector", &selectors, "A type:value selector. Can be used more than once");
    fs.Duration("ttl", &duration, absl::ZeroDuration(), "TTL of the SVID");
  }
  FlagSet fs;
  std::string spiffe_id, socket_path;
  int64_t ttl = -1, token_ttl = -1;
  bool admin = true, node = true;
  std::vector<std::string> selectors;
  absl::Duration duration;
};

TEST(FlagSet, RegistrationStoresDefaults) {
  EntryFlags f;
  EXPECT_EQ(f.spiffe_id, "");
  EXPECT_EQ(f.socket_path, "/tmp/sigil-server/private/api.sock");
  EXPECT_EQ(f.ttl, 0);
  EXPECT_EQ(f.token_ttl, 600);
  EXPECT_FALSE(f.admin);
  EXPECT_THAT(f.selectors, IsEmpty());
}

TEST(FlagSet, AcceptsEveryGoSpelling) {
  EntryFlags f;
  ASSERT_TRUE(f.fs.Parse({"-spiffeID", "spiffe://a/b", "--x509SVIDTTL=30", "--selector",
                          "unix:uid:1", "-selector=unix:gid:2", "-admin"})
                  .ok());
  EXPECT_EQ(f.spiffe_id, "spiffe://a/b");
  EXPECT_EQ(f.ttl, 30);
  EXPECT_TRUE(f.admin);
  EXPECT_FALSE(f.node);
  EXPECT_THAT(f.selectors, ElementsAre("unix:uid:1", "unix:gid:2"));
  EXPECT_TRUE(f.fs.IsSet("spiffeID"));
  EXPECT_TRUE(f.fs.IsSet("admin"));
  EXPECT_FALSE(f.fs.IsSet("node"));
  EXPECT_FALSE(f.fs.help_requested());
}

TEST(FlagSet, ValueMayStartWithDashOrContainEquals) {
  EntryFlags f;
  ASSERT_TRUE(f.fs.Parse({"-x509SVIDTTL", "-5", "-spiffeID", "--weird=value"}).ok());
  EXPECT_EQ(f.ttl, -5);
  EXPECT_EQ(f.spiffe_id, "--weird=value");
  ASSERT_TRUE(f.fs.Parse({"-selector=k8s:label=a=b"}).ok());
  EXPECT_THAT(f.selectors, ElementsAre("k8s:label=a=b"));
}

TEST(FlagSet, EmptyValueIsAllowed) {
  EntryFlags f;
  ASSERT_TRUE(f.fs.Parse({"-socketPath=", "-spiffeID", ""}).ok());
  EXPECT_EQ(f.socket_path, "");
  EXPECT_EQ(f.spiffe_id, "");
  EXPECT_TRUE(f.fs.IsSet("socketPath"));
}

TEST(FlagSet, ScalarGivenTwiceKeepsLast) {
  EntryFlags f;
  ASSERT_TRUE(f.fs.Parse({"-spiffeID", "spiffe://a/1", "-spiffeID", "spiffe://a/2"}).ok());
  EXPECT_EQ(f.spiffe_id, "spiffe://a/2");
}

TEST(FlagSet, BoolTakesExplicitValueOnlyWithEquals) {
  EntryFlags f;
  ASSERT_TRUE(f.fs.Parse({"-admin=false", "-node=T"}).ok());
  EXPECT_FALSE(f.admin);
  EXPECT_TRUE(f.node);
  EXPECT_TRUE(f.fs.IsSet("admin"));
  // "-admin false": the bool does not consume "false", which ends the flags.
  ASSERT_TRUE(f.fs.Parse({"-admin", "false", "-node"}).ok());
  EXPECT_TRUE(f.admin);
  EXPECT_THAT(f.fs.args(), ElementsAre("false", "-node"));
}

TEST(FlagSet, UnknownFlagNamesIt) {
  EntryFlags f;
  absl::Status s = f.fs.Parse({"-spiffeID", "x", "-bogus", "1"});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "flag provided but not defined: -bogus");
}

TEST(FlagSet, FlagNamesAreCaseSensitive) {
  EntryFlags f;
  absl::Status s = f.fs.Parse({"-spiffeid", "x"});
  EXPECT_EQ(s.message(), "flag provided but not defined: -spiffeid");
}

TEST(FlagSet, MissingValueNamesTheFlag) {
  EntryFlags f;
  absl::Status s = f.fs.Parse({"-admin", "-spiffeID"});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "flag needs an argument: -spiffeID");
}

TEST(FlagSet, BadFlagSyntax) {
  EntryFlags f;
  EXPECT_EQ(f.fs.Parse({"---admin"}).message(), "bad flag syntax: ---admin");
  EXPECT_EQ(f.fs.Parse({"-=x"}).message(), "bad flag syntax: -=x");
}

TEST(FlagSet, BadIntValue) {
  EntryFlags f;
  absl::Status s = f.fs.Parse({"-x509SVIDTTL", "ten"});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "invalid value \"ten\" for flag -x509SVIDTTL: parse error");
  s = f.fs.Parse({"-x509SVIDTTL=99999999999999999999"});
  EXPECT_EQ(s.message(),
            "invalid value \"99999999999999999999\" for flag -x509SVIDTTL: value out of range");
}

TEST(FlagSet, BadBoolValue) {
  EntryFlags f;
  absl::Status s = f.fs.Parse({"-admin=maybe"});
  EXPECT_EQ(s.message(), "invalid boolean value \"maybe\" for -admin: parse error");
}

TEST(FlagSet, FirstBadValueIsReported) {
  EntryFlags f;
  absl::Status s = f.fs.Parse({"-admin=x", "-x509SVIDTTL=y"});
  EXPECT_THAT(s.message(), HasSubstr("-admin"));
}

TEST(FlagSet, DurationFlag) {
  EntryFlags f;
  ASSERT_TRUE(f.fs.Parse({"-ttl", "1h30m"}).ok());
  EXPECT_EQ(f.duration, absl::Minutes(90));
  absl::Status s = f.fs.Parse({"-ttl", "600"});
  EXPECT_EQ(s.message(),
            "invalid value \"600\" for flag -ttl: missing unit in duration \"600\"");
}

TEST(FlagSet, TerminatorAndPositionals) {
  EntryFlags f;
  ASSERT_TRUE(f.fs.Parse({"-admin", "--", "-node"}).ok());
  EXPECT_TRUE(f.admin);
  EXPECT_FALSE(f.node);
  EXPECT_THAT(f.fs.args(), ElementsAre("-node"));
  ASSERT_TRUE(f.fs.Parse({"extra", "-admin"}).ok());
  EXPECT_THAT(f.fs.args(), ElementsAre("extra", "-admin"));
  ASSERT_TRUE(f.fs.Parse({"-", "x"}).ok());
  EXPECT_THAT(f.fs.args(), ElementsAre("-", "x"));
}

TEST(FlagSet, HelpStopsParsing) {
  for (const char* h : {"-h", "-help", "--h", "--help"}) {
    EntryFlags f;
    ASSERT_TRUE(f.fs.Parse({"-admin", h, "-bogus"}).ok()) << h;
    EXPECT_TRUE(f.fs.help_requested()) << h;
  }
}

TEST(FlagSet, FuncFlagValidates) {
  FlagSet fs("x");
  std::string format = "pretty";
  fs.Func("output", "Desired output format (pretty, json)", "pretty",
          [&format](const std::string& v) -> absl::Status {
            if (v != "json" && v != "pretty") {
              return absl::InvalidArgumentError("unknown format option: \"" + v + "\"");
            }
            format = v;
            return absl::OkStatus();
          });
  ASSERT_TRUE(fs.Parse({"-output", "json"}).ok());
  EXPECT_EQ(format, "json");
  EXPECT_EQ(fs.Parse({"-output", "xml"}).message(),
            "invalid value \"xml\" for flag -output: unknown format option: \"xml\"");
}

TEST(FlagSet, UsageListsFlagsSortedWithTypesAndDefaults) {
  EntryFlags f;
  std::string usage = f.fs.Usage();
  EXPECT_THAT(usage, HasSubstr("Usage of entry create:\n"));
  EXPECT_THAT(usage, HasSubstr("  -admin\n    \tGrant admin\n"));
  EXPECT_THAT(usage,
              HasSubstr("  -socketPath string\n    \tPath to the server API socket (default "
                        "\"/tmp/sigil-server/private/api.sock\")\n"));
  EXPECT_THAT(usage, HasSubstr("  -tokenTTL int\n    \tToken TTL in seconds (default 600)\n"));
  EXPECT_THAT(usage, HasSubstr("  -selector value\n"));
  EXPECT_THAT(usage, HasSubstr("  -ttl duration\n"));
  EXPECT_LT(usage.find("-admin"), usage.find("-node"));
  EXPECT_LT(usage.find("-node"), usage.find("-selector"));
}

TEST(NormalizeGoArgs, RewritesIntoCli11Form) {
  auto lookup = [](const std::string& name, FlagArity* arity) {
    if (name == "admin") {
      *arity = FlagArity::kBoolean;
      return true;
    }
    if (name == "spiffeID" || name == "ttl") {
      *arity = FlagArity::kValue;
      return true;
    }
    return false;
  };
  absl::StatusOr<NormalizedArgs> n =
      NormalizeGoArgs({"-spiffeID", "spiffe://a/b", "-admin", "--ttl=-3", "-spiffeID=", "rest"},
                      lookup);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_THAT(n->tokens, ElementsAre("--spiffeID=spiffe://a/b", "--admin=true", "--ttl=-3",
                                     "--spiffeID", ""));
  EXPECT_THAT(n->positional, ElementsAre("rest"));
  EXPECT_FALSE(n->help_requested);
}

TEST(GoQuote, EscapesLikeGo) {
  EXPECT_EQ(GoQuote("plain"), "\"plain\"");
  EXPECT_EQ(GoQuote("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(GoQuote("l1\nl2\t"), "\"l1\\nl2\\t\"");
  EXPECT_EQ(GoQuote(std::string("\x01", 1)), "\"\\x01\"");
  EXPECT_EQ(GoQuote("h\xc3\xa9"), "\"h\xc3\xa9\"");
}

TEST(ParseGoInt, BasesSignsAndUnderscores) {
  EXPECT_EQ(*ParseGoInt("600"), 600);
  EXPECT_EQ(*ParseGoInt("-42"), -42);
  EXPECT_EQ(*ParseGoInt("+7"), 7);
  EXPECT_EQ(*ParseGoInt("0x1f"), 31);
  EXPECT_EQ(*ParseGoInt("0o17"), 15);
  EXPECT_EQ(*ParseGoInt("017"), 15);
  EXPECT_EQ(*ParseGoInt("0b101"), 5);
  EXPECT_EQ(*ParseGoInt("0"), 0);
  EXPECT_EQ(*ParseGoInt("1_000"), 1000);
  EXPECT_EQ(*ParseGoInt("0x_ff"), 255);
  EXPECT_EQ(*ParseGoInt("9223372036854775807"), INT64_MAX);
  EXPECT_EQ(*ParseGoInt("-9223372036854775808"), INT64_MIN);
}

TEST(ParseGoInt, RejectsMalformed) {
  for (const char* bad : {"", "-", "abc", "12a", "08", "0x", "1__0", "_1", "1_", "1.5", " 1"}) {
    absl::StatusOr<int64_t> v = ParseGoInt(bad);
    EXPECT_FALSE(v.ok()) << bad;
    EXPECT_EQ(v.status().message(), "parse error") << bad;
  }
  EXPECT_EQ(ParseGoInt("9223372036854775808").status().message(), "value out of range");
}

TEST(ParseGoBool, GoSpellings) {
  for (const char* t : {"1", "t", "T", "TRUE", "true", "True"}) EXPECT_TRUE(*ParseGoBool(t)) << t;
  for (const char* f : {"0", "f", "F", "FALSE", "false", "False"}) {
    EXPECT_FALSE(*ParseGoBool(f)) << f;
  }
  EXPECT_FALSE(ParseGoBool("yes").ok());
  EXPECT_FALSE(ParseGoBool("").ok());
}

TEST(ParseGoDuration, AcceptsGoSyntax) {
  EXPECT_EQ(*ParseGoDuration("0"), absl::ZeroDuration());
  EXPECT_EQ(*ParseGoDuration("1h"), absl::Hours(1));
  EXPECT_EQ(*ParseGoDuration("1h30m"), absl::Minutes(90));
  EXPECT_EQ(*ParseGoDuration("1.5s"), absl::Milliseconds(1500));
  EXPECT_EQ(*ParseGoDuration(".5m"), absl::Seconds(30));
  EXPECT_EQ(*ParseGoDuration("-2m"), absl::Minutes(-2));
  EXPECT_EQ(*ParseGoDuration("+10s"), absl::Seconds(10));
  EXPECT_EQ(*ParseGoDuration("300ms"), absl::Milliseconds(300));
  EXPECT_EQ(*ParseGoDuration("2us"), absl::Microseconds(2));
  EXPECT_EQ(*ParseGoDuration("2\xc2\xb5s"), absl::Microseconds(2));
  EXPECT_EQ(*ParseGoDuration("7ns"), absl::Nanoseconds(7));
}

TEST(ParseGoDuration, RejectsWithReason) {
  EXPECT_EQ(ParseGoDuration("").status().message(), "invalid duration \"\"");
  EXPECT_EQ(ParseGoDuration("abc").status().message(), "invalid duration \"abc\"");
  EXPECT_EQ(ParseGoDuration("600").status().message(), "missing unit in duration \"600\"");
  EXPECT_EQ(ParseGoDuration("1d").status().message(), "unknown unit \"d\" in duration \"1d\"");
  EXPECT_EQ(ParseGoDuration("1h.").status().message(), "invalid duration \"1h.\"");
  EXPECT_EQ(ParseGoDuration("3000000h").status().message(), "invalid duration \"3000000h\"");
}

TEST(FormatGoDuration, MatchesGoString) {
  EXPECT_EQ(FormatGoDuration(absl::ZeroDuration()), "0s");
  EXPECT_EQ(FormatGoDuration(absl::Hours(1)), "1h0m0s");
  EXPECT_EQ(FormatGoDuration(absl::Seconds(90)), "1m30s");
  EXPECT_EQ(FormatGoDuration(absl::Milliseconds(1500)), "1.5s");
  EXPECT_EQ(FormatGoDuration(absl::Milliseconds(500)), "500ms");
  EXPECT_EQ(FormatGoDuration(absl::Nanoseconds(12)), "12ns");
  EXPECT_EQ(FormatGoDuration(absl::Microseconds(-3)), "-3\xc2\xb5s");
}

}  // namespace
}  // namespace sigil::cli
