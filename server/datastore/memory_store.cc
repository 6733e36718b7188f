#include "server/datastore/memory_store.h"

#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace sigil::server::datastore {

absl::StatusOr<std::unique_ptr<MemoryStore>> MemoryStore::Create(const MemoryStoreOptions& options) {
  if (options.retained_revisions < 1) {
    return absl::InvalidArgumentError(absl::StrCat("datastore(memory): retained_revisions is ",
                                                   options.retained_revisions, "; it must be >= 1"));
  }
  if (options.watch_queue_limit < 1) {
    return absl::InvalidArgumentError(absl::StrCat("datastore(memory): watch_queue_limit is ",
                                                   options.watch_queue_limit, "; it must be >= 1"));
  }
  std::unique_ptr<MemoryStore> store(new MemoryStore(options));
  store->hub_ = internal::WatchHub::Start(store.get(), 0, static_cast<size_t>(options.watch_queue_limit));
  return store;
}

MemoryStore::MemoryStore(const MemoryStoreOptions& options)
    : retained_revisions_(options.retained_revisions) {}

MemoryStore::~MemoryStore() { Close().IgnoreError(); }

absl::Status MemoryStore::Close() {
  if (hub_->OnDispatcherThread()) {
    return internal::CloseFromCallbackError();
  }
  {
    absl::MutexLock lock(&mu_);
    closed_ = true;
  }
  return hub_->Stop("datastore closed");
}

absl::StatusOr<KeyValue> MemoryStore::Get(absl::string_view key) {
  absl::Status valid = internal::ValidateKey(key, "key");
  if (!valid.ok()) return valid;
  absl::ReaderMutexLock lock(&mu_);
  if (closed_) return internal::ClosedError();
  auto it = data_.find(key);
  if (it == data_.end()) {
    return internal::KeyNotFoundError(key);
  }
  return KeyValue{it->first, it->second.value, it->second.create_revision, it->second.mod_revision};
}

absl::StatusOr<RangeResult> MemoryStore::Range(absl::string_view prefix, absl::string_view start_after,
                                               int64_t limit) {
  absl::Status valid = internal::ValidateRange(prefix, start_after, limit);
  if (!valid.ok()) return valid;
  absl::ReaderMutexLock lock(&mu_);
  if (closed_) return internal::ClosedError();
  RangeResult result;
  result.revision = revision_;
  auto it = start_after < prefix ? data_.lower_bound(prefix) : data_.upper_bound(start_after);
  for (; it != data_.end() && absl::StartsWith(it->first, prefix); ++it) {
    if (limit > 0 && static_cast<int64_t>(result.kvs.size()) == limit) {
      result.more = true;
      break;
    }
    result.kvs.push_back(KeyValue{it->first, it->second.value, it->second.create_revision,
                                  it->second.mod_revision});
  }
  return result;
}

absl::StatusOr<int64_t> MemoryStore::Commit(const Txn& txn) {
  absl::Status valid = internal::ValidateTxn(txn);
  if (!valid.ok()) return valid;
  absl::MutexLock lock(&mu_);
  if (closed_) return internal::ClosedError();
  for (const Compare& c : txn.compares) {
    auto it = data_.find(c.key);
    int64_t actual = it == data_.end() ? 0 : it->second.mod_revision;
    if (actual != c.mod_revision) return internal::CompareFailedError(c.key, c.mod_revision, actual);
  }
  const int64_t revision = revision_ + 1;
  std::vector<Event> events;
  for (const Op& op : txn.ops) {
    auto it = data_.find(op.key);
    if (op.type == Op::Type::kPut) {
      int64_t create = it == data_.end() ? revision : it->second.create_revision;
      events.push_back(Event{Event::Type::kPut, op.key, op.value, create, revision});
    } else if (it != data_.end()) {
      events.push_back(Event{Event::Type::kDelete, op.key, "", 0, revision});
    }
  }
  if (events.empty()) return revision_;
  for (const Event& e : events) {
    if (e.type == Event::Type::kPut) {
      data_[e.key] = Entry{e.value, e.create_revision, revision};
    } else {
      data_.erase(e.key);
    }
  }
  revision_ = revision;
  history_.push_back(WatchResponse{revision, events});
  while (revision_ - compact_revision_ > retained_revisions_) {
    history_.pop_front();
    ++compact_revision_;
  }
  hub_->Publish(revision, events);
  return revision;
}

absl::StatusOr<int64_t> MemoryStore::CurrentRevision() {
  absl::ReaderMutexLock lock(&mu_);
  if (closed_) return internal::ClosedError();
  return revision_;
}

absl::StatusOr<std::unique_ptr<WatchHandle>> MemoryStore::Watch(absl::string_view prefix,
                                                                int64_t from_revision,
                                                                WatchCallback callback) {
  absl::Status valid = internal::ValidateWatch(prefix, from_revision, callback);
  if (!valid.ok()) return valid;
  // Holding mu_ keeps commits out between the compaction check and the
  // registration.
  absl::ReaderMutexLock lock(&mu_);
  if (closed_) return internal::ClosedError();
  if (from_revision != 0 && from_revision <= compact_revision_) {
    return internal::CompactedError(from_revision, compact_revision_);
  }
  return hub_->Add(prefix, from_revision, std::move(callback));
}

absl::Status MemoryStore::ReadChanges(int64_t from, int64_t to, size_t max_revisions,
                                      std::vector<WatchResponse>* out) {
  absl::ReaderMutexLock lock(&mu_);
  if (from <= compact_revision_) {
    return internal::CompactedError(from, compact_revision_, "watch fell behind: ");
  }
  size_t index = static_cast<size_t>(from - compact_revision_ - 1);
  for (size_t n = 0; n < max_revisions && index < history_.size() && history_[index].revision <= to;
       ++n, ++index) {
    out->push_back(history_[index]);
  }
  return absl::OkStatus();
}

}  // namespace sigil::server::datastore
