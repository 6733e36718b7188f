#include "server/datastore/kv_store.h"

#include <set>

#include "absl/strings/cord.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace sigil::server::datastore {
namespace {

// Status payload carrying the failed compare's key (see FailedCompareKey).
constexpr char kCompareKeyPayload[] = "type.sigil.dev/sigil.datastore.FailedCompareKey";

}  // namespace

std::optional<std::string> FailedCompareKey(const absl::Status& status) {
  if (status.code() != absl::StatusCode::kAborted) return std::nullopt;
  auto payload = status.GetPayload(kCompareKeyPayload);
  if (!payload.has_value()) return std::nullopt;
  return std::string(*payload);
}

namespace internal {

std::string QuoteKey(absl::string_view key) { return absl::StrCat("\"", absl::CHexEscape(key), "\""); }

absl::Status ValidateKey(absl::string_view key, absl::string_view what) {
  if (key.empty()) return absl::InvalidArgumentError(absl::StrCat("datastore: ", what, " is empty"));
  if (key.size() > kMaxKeyBytes) {
    return absl::InvalidArgumentError(absl::StrCat("datastore: ", what, " is ", key.size(),
                                                   " bytes; the limit is ", kMaxKeyBytes));
  }
  return absl::OkStatus();
}

absl::Status ValidateRange(absl::string_view prefix, absl::string_view start_after, int64_t limit) {
  if (limit < 0) {
    return absl::InvalidArgumentError(absl::StrCat("datastore: limit is ", limit, "; it must be >= 0"));
  }
  if (prefix.size() > kMaxKeyBytes || start_after.size() > kMaxKeyBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("datastore: prefix and start_after must be at most ", kMaxKeyBytes, " bytes"));
  }
  return absl::OkStatus();
}

absl::Status ValidateWatch(absl::string_view prefix, int64_t from_revision, const WatchCallback& callback) {
  if (from_revision < 0) {
    return absl::InvalidArgumentError(absl::StrCat("datastore: from_revision is ", from_revision, "; it must be >= 0"));
  }
  if (prefix.size() > kMaxKeyBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("datastore: prefix is ", prefix.size(), " bytes; the limit is ", kMaxKeyBytes));
  }
  if (!callback) return absl::InvalidArgumentError("datastore: watch callback is empty");
  return absl::OkStatus();
}

absl::Status ClosedError() { return absl::FailedPreconditionError("datastore: closed"); }

absl::Status CloseFromCallbackError() {
  return absl::FailedPreconditionError("datastore: Close() called from a watch callback");
}

absl::Status KeyNotFoundError(absl::string_view key) {
  return absl::NotFoundError(absl::StrCat("datastore: key ", QuoteKey(key), " not found"));
}

absl::Status CompactedError(int64_t revision, int64_t compact_revision, absl::string_view context) {
  return absl::OutOfRangeError(absl::StrCat("datastore: ", context, "revision ", revision,
                                            " has been compacted; the oldest retained revision is ",
                                            compact_revision + 1));
}

absl::Status ValidateTxn(const Txn& txn) {
  if (txn.compares.size() > kMaxTxnOps) {
    return absl::InvalidArgumentError(absl::StrCat("datastore: transaction has ", txn.compares.size(),
                                                   " compares; the limit is ", kMaxTxnOps));
  }
  if (txn.ops.size() > kMaxTxnOps) {
    return absl::InvalidArgumentError(absl::StrCat("datastore: transaction has ", txn.ops.size(),
                                                   " ops; the limit is ", kMaxTxnOps));
  }
  size_t bytes = 0;
  for (size_t i = 0; i < txn.compares.size(); ++i) {
    const Compare& c = txn.compares[i];
    absl::Status s = ValidateKey(c.key, absl::StrCat("compares[", i, "].key"));
    if (!s.ok()) return s;
    if (c.mod_revision < 0) {
      return absl::InvalidArgumentError(absl::StrCat("datastore: compares[", i, "].mod_revision is ",
                                                     c.mod_revision, "; it must be >= 0"));
    }
    bytes += c.key.size();
  }
  std::set<absl::string_view> seen;
  for (size_t i = 0; i < txn.ops.size(); ++i) {
    const Op& op = txn.ops[i];
    absl::Status s = ValidateKey(op.key, absl::StrCat("ops[", i, "].key"));
    if (!s.ok()) return s;
    if (op.type != Op::Type::kPut && op.type != Op::Type::kDelete) {
      return absl::InvalidArgumentError(absl::StrCat("datastore: ops[", i, "] has unknown type ",
                                                     static_cast<int>(op.type)));
    }
    if (op.type == Op::Type::kDelete && !op.value.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("datastore: ops[", i, "] deletes ", QuoteKey(op.key), " but carries a value"));
    }
    if (!seen.insert(op.key).second) {
      return absl::InvalidArgumentError(absl::StrCat("datastore: key ", QuoteKey(op.key),
                                                     " appears in more than one op of the transaction"));
    }
    bytes += op.key.size() + op.value.size();
  }
  if (bytes > kMaxTxnBytes) {
    return absl::InvalidArgumentError(absl::StrCat("datastore: transaction holds ", bytes,
                                                   " bytes of keys and values; the limit is ",
                                                   kMaxTxnBytes));
  }
  return absl::OkStatus();
}

absl::Status CompareFailedError(absl::string_view key, int64_t expected, int64_t actual) {
  auto describe = [](int64_t rev) {
    return rev == 0 ? std::string("absent") : absl::StrCat("mod_revision ", rev);
  };
  absl::Status status = absl::AbortedError(absl::StrCat("datastore: compare failed on key ", QuoteKey(key),
                                                        ": expected ", describe(expected), ", found ",
                                                        describe(actual)));
  status.SetPayload(kCompareKeyPayload, absl::Cord(key));
  return status;
}

std::optional<std::string> PrefixSuccessor(absl::string_view prefix) {
  std::string s(prefix);
  while (!s.empty()) {
    unsigned char last = static_cast<unsigned char>(s.back());
    if (last != 0xff) {
      s.back() = static_cast<char>(last + 1);
      return s;
    }
    s.pop_back();
  }
  return std::nullopt;
}

}  // namespace internal
}  // namespace sigil::server::datastore
