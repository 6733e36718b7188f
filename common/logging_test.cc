#include "common/logging.h"

#include "gtest/gtest.h"

namespace sigil {
namespace {

TEST(Logging, UnknownLevelIsRejected) {
  absl::Status s = InitLogging("LOUD", "text", "test");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("LOUD"), std::string::npos);
}

TEST(Logging, UnknownFormatIsRejected) {
  absl::Status s = InitLogging("INFO", "xml", "test");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("xml"), std::string::npos);
}

TEST(Logging, AcceptsKnownLevelsAndFormats) {
  EXPECT_TRUE(InitLogging("debug", "json", "test").ok());
  EXPECT_TRUE(InitLogging("WARN", "text", "test").ok());
}

TEST(Logging, JsonEscapeHandlesQuotesAndControlCharacters) {
  EXPECT_EQ(JsonEscape("a\"b\\c\n\x01"), "a\\\"b\\\\c\\n\\u0001");
}

}  // namespace
}  // namespace sigil
