#pragma once

// Debian's Abseil (20220623) ships no status macros; this is Sigil's one pair.

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define SIGIL_STATUS_CONCAT_INNER(a, b) a##b
#define SIGIL_STATUS_CONCAT(a, b) SIGIL_STATUS_CONCAT_INNER(a, b)

// Returns from the enclosing function if `expr` (an absl::Status) is not OK.
#define SIGIL_RETURN_IF_ERROR(expr)                  \
  do {                                               \
    ::absl::Status sigil_status_ = (expr);           \
    if (!sigil_status_.ok()) return sigil_status_;   \
  } while (false)

// Evaluates `rexpr` (an absl::StatusOr<T>); on error returns its status,
// otherwise moves the value into `lhs` (which may be a declaration).
#define SIGIL_ASSIGN_OR_RETURN(lhs, rexpr) \
  SIGIL_ASSIGN_OR_RETURN_IMPL(SIGIL_STATUS_CONCAT(sigil_statusor_, __LINE__), lhs, rexpr)

#define SIGIL_ASSIGN_OR_RETURN_IMPL(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()
