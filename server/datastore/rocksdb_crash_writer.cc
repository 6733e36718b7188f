// Test helper run as a separate process by datastore_test.
//
//   datastore_crash_writer commit-loop <dir>
//       Opens the store and commits forever; transaction i puts "a/<i>" and
//       "b/<i>" (value "<i>"). After each Commit returns OK it writes
//       "<i> <revision>\n" to stdout with write(2), unbuffered, so every line
//       the parent reads is an acknowledged commit. The parent kills it with
//       SIGKILL.
//   datastore_crash_writer open <dir>
//       Tries to open the store and writes "<StatusCode> <message>\n".
//
// Exit status: 0 after "open", 2 on a usage error, 3 when commit-loop fails.

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "server/datastore/rocksdb_store.h"

namespace {

using sigil::server::datastore::Op;
using sigil::server::datastore::RocksDbStore;
using sigil::server::datastore::Txn;

bool WriteAll(const std::string& s) {
  size_t done = 0;
  while (done < s.size()) {
    ssize_t n = ::write(STDOUT_FILENO, s.data() + done, s.size() - done);
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

int CommitLoop(const std::string& dir) {
  auto store = RocksDbStore::Open(dir);
  if (!store.ok()) {
    std::fprintf(stderr, "open: %s\n", store.status().ToString().c_str());
    return 3;
  }
  for (int64_t i = 0;; ++i) {
    std::string value = absl::StrCat(i);
    Txn txn;
    txn.ops.push_back(Op::Put(absl::StrCat("a/", i), value));
    txn.ops.push_back(Op::Put(absl::StrCat("b/", i), value));
    auto revision = (*store)->Commit(txn);
    if (!revision.ok()) {
      std::fprintf(stderr, "commit: %s\n", revision.status().ToString().c_str());
      return 3;
    }
    if (!WriteAll(absl::StrCat(i, " ", *revision, "\n"))) return 3;
  }
}

int OpenOnce(const std::string& dir) {
  auto store = RocksDbStore::Open(dir);
  absl::Status status = store.ok() ? absl::OkStatus() : store.status();
  WriteAll(absl::StrCat(absl::StatusCodeToString(status.code()), " ", status.message(), "\n"));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s commit-loop|open <dir>\n", argv[0]);
    return 2;
  }
  if (std::strcmp(argv[1], "commit-loop") == 0) return CommitLoop(argv[2]);
  if (std::strcmp(argv[1], "open") == 0) return OpenOnce(argv[2]);
  std::fprintf(stderr, "unknown mode %s\n", argv[1]);
  return 2;
}
