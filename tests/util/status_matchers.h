#pragma once

// absl::Status assertions for every module's tests. Header-only and
// dependent on GoogleTest and Abseil alone, so that any test binary (even
// spiffe/crypto's, which must not link gRPC) may include it.
//
//   ASSERT_OK(expr);                   expr is a Status or StatusOr<T>
//   EXPECT_OK(expr);
//   ASSERT_OK_AND_ASSIGN(lhs, expr);   ASSERTs OK, then moves the value to lhs
//   EXPECT_STATUS(expr, code, substr); the code, and a message containing substr

#include <gtest/gtest.h>

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#define SIGIL_TESTING_CONCAT_INNER(a, b) a##b
#define SIGIL_TESTING_CONCAT(a, b) SIGIL_TESTING_CONCAT_INNER(a, b)

// ASSERTs that a StatusOr is OK, then moves its value into `lhs` (which may
// be a declaration: `ASSERT_OK_AND_ASSIGN(auto x, MakeX())`).
#define ASSERT_OK_AND_ASSIGN(lhs, rexpr) \
  SIGIL_ASSERT_OK_AND_ASSIGN_IMPL(SIGIL_TESTING_CONCAT(sigil_statusor_, __LINE__), lhs, rexpr)
#define SIGIL_ASSERT_OK_AND_ASSIGN_IMPL(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                    \
  ASSERT_TRUE(statusor.ok()) << statusor.status().ToString(); \
  lhs = std::move(statusor).value()

// ASSERT / EXPECT that a Status or StatusOr is OK, printing it otherwise.
#define ASSERT_OK(expr)                                                    \
  do {                                                                     \
    const ::absl::Status sigil_status_ = ::sigil::testing::StatusOf(expr); \
    ASSERT_TRUE(sigil_status_.ok()) << sigil_status_.ToString();           \
  } while (false)
#define EXPECT_OK(expr)                                                    \
  do {                                                                     \
    const ::absl::Status sigil_status_ = ::sigil::testing::StatusOf(expr); \
    EXPECT_TRUE(sigil_status_.ok()) << sigil_status_.ToString();           \
  } while (false)

// EXPECTs that a Status (or StatusOr) failed with `code` and a message
// containing `substr`.
#define EXPECT_STATUS(expr, code, substr) \
  ::sigil::testing::ExpectStatus(::sigil::testing::StatusOf(expr), code, substr)

namespace sigil::testing {

// The status of a Status or of a StatusOr.
inline absl::Status StatusOf(const absl::Status& s) { return s; }
template <typename T>
absl::Status StatusOf(const absl::StatusOr<T>& s) {
  return s.status();
}

// EXPECTs `s` to have `code` and a message containing `substr` (any message
// when `substr` is empty).
inline void ExpectStatus(const absl::Status& s, absl::StatusCode code, absl::string_view substr) {
  EXPECT_EQ(s.code(), code) << s.ToString();
  EXPECT_NE(s.message().find(substr), absl::string_view::npos)
      << "message \"" << s.message() << "\" lacks \"" << substr << "\"";
}

}  // namespace sigil::testing
