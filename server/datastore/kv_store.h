#pragma once

// The server's datastore: a key-value store with revisions, transactions,
// prefix scans and a change feed. Everything above it (entries, agents,
// bundles, join tokens, the entry index) speaks only this interface; the
// engines are RocksDB (embedded, one server) and etcd (several servers).
//
// The model is etcd's (v3 MVCC), so that both engines behave identically:
//
// * One global revision counter. Every transaction that changes something
//   takes exactly one new revision, strictly greater than every earlier one;
//   all changes of that transaction carry it. A fresh store is at revision 0,
//   so the first change gets revision 1.
// * Every live key records `create_revision` (the revision that created it,
//   since its last deletion) and `mod_revision` (the revision of its latest
//   change). Both are >= 1.
// * Transactions compare keys' mod_revision (0 = "the key must not exist")
//   and then apply puts and deletes, atomically.
// * A change feed (Watch) replays every change from a given revision onward,
//   grouped per revision, as long as that revision is still retained; older
//   history is compacted away and asking for it gives OUT_OF_RANGE, after which
//   the caller re-lists (Range) and watches from the listing's revision + 1.
//
// Listing and then watching without missing a change:
//
//   revision = 0
//   page = Range(prefix, "", 500)      // first page; remember page.revision
//   ... more pages; each page is a consistent snapshot at its own revision ...
//   Watch(prefix, first_page.revision + 1, cb)
//
// Changes committed between pages show up both in a later page and in the
// feed; consumers apply an event only when its mod_revision is greater than the
// mod_revision they already hold for that key (deletes: always), which makes
// replays idempotent.
//
// Limits (identical in every engine; they are etcd's defaults, so data that
// fits the RocksDB engine also fits etcd): keys are 1..kMaxKeyBytes bytes of
// any content; a transaction has at most kMaxTxnOps compares and at most
// kMaxTxnOps ops, and its keys plus values total at most kMaxTxnBytes.
//
// Thread-safety: every method of KvStore may be called concurrently from any
// thread. Watch callbacks run on a thread owned by the store (see Watch).
// Ownership: stores are made by their engine's factory and owned by the
// caller (std::unique_ptr); they keep no reference to caller objects other
// than watch callbacks.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sigil::server::datastore {

// etcd's default --max-txn-ops.
inline constexpr size_t kMaxTxnOps = 128;
// etcd's default --max-request-bytes (1.5 MiB), applied to keys + values.
inline constexpr size_t kMaxTxnBytes = 1536 * 1024;
// Longest key accepted. SPIFFE IDs are at most 2048 bytes; keys embed them.
inline constexpr size_t kMaxKeyBytes = 8192;

struct KeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;

  friend bool operator==(const KeyValue& a, const KeyValue& b) {
    return a.key == b.key && a.value == b.value && a.create_revision == b.create_revision &&
           a.mod_revision == b.mod_revision;
  }
};

struct RangeResult {
  // Keys in ascending byte order (memcmp), all with the requested prefix.
  std::vector<KeyValue> kvs;
  // The store's revision at the moment of the read: `kvs` is exactly the
  // state after that revision was committed.
  int64_t revision = 0;
  // True when more keys with the prefix follow the last one in `kvs`; fetch
  // them with start_after = kvs.back().key.
  bool more = false;
};

// A precondition of a transaction: `key`'s current mod_revision must equal
// `mod_revision`; 0 means the key must not exist.
struct Compare {
  std::string key;
  int64_t mod_revision = 0;
};

struct Op {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  std::string key;
  // Put only; may be empty. Deletes must leave it empty.
  std::string value;

  static Op Put(std::string key, std::string value) {
    return Op{Type::kPut, std::move(key), std::move(value)};
  }
  static Op Delete(std::string key) { return Op{Type::kDelete, std::move(key), {}}; }
};

struct Txn {
  std::vector<Compare> compares;
  // Applied in order; a key may appear in at most one op of a transaction
  // (as in etcd, which rejects "duplicate key given in txn request").
  std::vector<Op> ops;
};

struct Event {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  std::string key;
  // The new value for a put; empty for a delete.
  std::string value;
  // For a put, the key's create_revision after the change (== mod_revision
  // when the put created the key); 0 for a delete.
  int64_t create_revision = 0;
  // The revision of the transaction that made the change.
  int64_t mod_revision = 0;

  friend bool operator==(const Event& a, const Event& b) {
    return a.type == b.type && a.key == b.key && a.value == b.value &&
           a.create_revision == b.create_revision && a.mod_revision == b.mod_revision;
  }
};

// The changes of one committed transaction that match a watch's prefix.
struct WatchResponse {
  int64_t revision = 0;
  // Non-empty; in the transaction's op order; every event's mod_revision is
  // `revision`.
  std::vector<Event> events;
};

// Called with each committed transaction's matching changes, or once with a
// terminal error after which it is never called again:
//   OUT_OF_RANGE  the watch fell behind the retained history (it was slower
//                 than the store compacts, or compaction raced the watch's
//                 setup); re-list and watch again.
//   UNAVAILABLE   the store stopped serving the watch (Close(); for etcd, a
//                 lost connection). Watch again from the last revision + 1.
//   DATA_LOSS / INTERNAL  reading the history failed.
using WatchCallback = std::function<void(absl::StatusOr<WatchResponse>)>;

// Cancels its watch when destroyed. Once the destructor returns, the callback
// is not running and will never be called again; if the callback is running
// on another thread at that moment, the destructor waits for it to return.
// Destroying the handle from inside any watch callback of the same store
// (including its own) does not wait and is safe. A handle may outlive the
// store that made it.
class WatchHandle {
 public:
  virtual ~WatchHandle() = default;
};

class KvStore {
 public:
  // Closes the store (see Close()). Must not run inside a watch callback.
  virtual ~KvStore() = default;

  // Returns the live value of `key`.
  // INVALID_ARGUMENT: key empty or longer than kMaxKeyBytes.
  // NOT_FOUND: the key does not exist. FAILED_PRECONDITION: store closed.
  // UNAVAILABLE / INTERNAL / DATA_LOSS: engine errors, with the engine's message.
  virtual absl::StatusOr<KeyValue> Get(absl::string_view key) = 0;

  // Lists up to `limit` keys that start with `prefix` and sort strictly after
  // `start_after` (empty: from the first key), from one consistent snapshot.
  // `limit` 0 means no limit. An empty prefix lists every key.
  // INVALID_ARGUMENT: negative limit, prefix or start_after longer than
  // kMaxKeyBytes. FAILED_PRECONDITION: store closed. Engine errors as Get.
  virtual absl::StatusOr<RangeResult> Range(absl::string_view prefix, absl::string_view start_after,
                                            int64_t limit) = 0;

  // Atomically checks every compare and, if all hold, applies every op under
  // one new revision, which it returns. The compares and the writes see no
  // other transaction in between. Durable before returning OK (per engine).
  // A transaction whose ops change nothing (no ops, or only deletes of absent
  // keys) takes no revision, emits no event and returns the current revision.
  // ABORTED: a compare failed; nothing changed. The message names the first
  // failing compare's key (also available through FailedCompareKey()).
  // INVALID_ARGUMENT: empty or oversize key, negative compare revision, a key
  // in two ops, a delete carrying a value, more than kMaxTxnOps compares or
  // ops, or more than kMaxTxnBytes of keys and values.
  // FAILED_PRECONDITION: store closed.
  // UNAVAILABLE / INTERNAL / DATA_LOSS: engine errors. Then the outcome is
  // unknown (as after an etcd timeout): re-read before retrying.
  virtual absl::StatusOr<int64_t> Commit(const Txn& txn) = 0;

  // The revision of the latest committed transaction (0 for a fresh store).
  // FAILED_PRECONDITION: store closed.
  virtual absl::StatusOr<int64_t> CurrentRevision() = 0;

  // Streams every change whose key starts with `prefix` (empty: all keys) and
  // whose revision is >= `from_revision`, one callback call per committed
  // transaction that has matching changes, in revision order, without gaps or
  // duplicates. `from_revision` 0 means "changes after the current revision".
  // A revision in the future is allowed: the watch starts when it is reached.
  // Changes committed while Watch() runs are neither lost nor duplicated: the
  // watch sees exactly the revisions >= from_revision.
  //
  // Delivery: callbacks of all watches of one store run on one dispatcher
  // thread owned by the store, never concurrently, after the change is durable.
  // Ownership: the caller owns the returned handle; the store owns
  // `callback` and destroys it (and what it captures) after the handle is
  // gone, possibly on the dispatcher thread.
  //
  // Commit never waits for a callback; each watch buffers a bounded number of
  // revisions and, past that, catches up from the retained history, so a slow
  // callback only delays itself and the store's other watches, and fails with
  // OUT_OF_RANGE once it falls behind the retained history. Callbacks should
  // therefore be quick (hand work off). A callback may call Get, Range,
  // Commit, Watch and CurrentRevision, and may destroy watch handles; it must
  // not call Close() or destroy the store.
  //
  // INVALID_ARGUMENT: negative from_revision, prefix longer than kMaxKeyBytes,
  // or an empty callback. OUT_OF_RANGE: from_revision is at or below the
  // compaction point (history no longer retained); the message names the
  // oldest revision still available. FAILED_PRECONDITION: store closed.
  virtual absl::StatusOr<std::unique_ptr<WatchHandle>> Watch(absl::string_view prefix,
                                                             int64_t from_revision,
                                                             WatchCallback callback) = 0;

  // Stops every watch (each live watch's callback receives UNAVAILABLE once,
  // undelivered changes are dropped), waits for the dispatcher thread, and
  // releases the engine (files, locks, connections). Afterwards every method
  // returns FAILED_PRECONDITION. Idempotent: a second Close() returns OK.
  // Returns the engine's error if releasing it failed (the store is closed
  // anyway). FAILED_PRECONDITION if called from a watch callback (nothing is
  // closed then).
  virtual absl::Status Close() = 0;
};

// For an ABORTED status returned by Commit: the key of the compare that
// failed. nullopt for any other status.
std::optional<std::string> FailedCompareKey(const absl::Status& status);

// Internal helpers shared by the engines, so that they accept and reject
// exactly the same input.
namespace internal {

// INVALID_ARGUMENT if `key` is empty or longer than kMaxKeyBytes; `what`
// names the argument in the message ("key", "ops[2].key").
absl::Status ValidateKey(absl::string_view key, absl::string_view what);

// Every rule of Commit's INVALID_ARGUMENT list.
absl::Status ValidateTxn(const Txn& txn);

// Range's INVALID_ARGUMENT rules: limit >= 0; prefix and start_after at most
// kMaxKeyBytes.
absl::Status ValidateRange(absl::string_view prefix, absl::string_view start_after, int64_t limit);

// Watch's INVALID_ARGUMENT rules: from_revision >= 0; prefix at most
// kMaxKeyBytes; a callback.
absl::Status ValidateWatch(absl::string_view prefix, int64_t from_revision,
                           const WatchCallback& callback);

// FAILED_PRECONDITION "datastore: closed", for every method after Close().
absl::Status ClosedError();

// FAILED_PRECONDITION for Close() called from a watch callback.
absl::Status CloseFromCallbackError();

// NOT_FOUND naming `key`, for Get.
absl::Status KeyNotFoundError(absl::string_view key);

// OUT_OF_RANGE "datastore: <context>revision <revision> has been compacted;
// the oldest retained revision is <compact_revision + 1>".
absl::Status CompactedError(int64_t revision, int64_t compact_revision,
                            absl::string_view context = "");

// ABORTED naming `key`, its expected and actual mod_revision (0 = absent),
// carrying `key` for FailedCompareKey().
absl::Status CompareFailedError(absl::string_view key, int64_t expected, int64_t actual);

// The smallest string greater than every string that starts with `prefix`;
// nullopt when there is none (prefix empty or all 0xff bytes).
std::optional<std::string> PrefixSuccessor(absl::string_view prefix);

// `key` quoted and C-escaped for error messages (keys may hold any byte).
std::string QuoteKey(absl::string_view key);

}  // namespace internal
}  // namespace sigil::server::datastore
