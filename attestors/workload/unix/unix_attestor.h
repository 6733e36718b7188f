#pragma once

// The `unix` workload attestor: selectors from the kernel's view of the
// calling process, named as SPIRE's unix plugin names them:
//   unix:uid:<n>                 effective uid (/proc/<pid>/status "Uid:")
//   unix:user:<name>             its user name, when the system knows one
//   unix:gid:<n>                 effective gid (/proc/<pid>/status "Gid:")
//   unix:group:<name>            its group name, when known
//   unix:supplementary_gid:<n>   each id of "Groups:"
//   unix:supplementary_group:<name>
//   unix:path:<path>             target of /proc/<pid>/exe
//   unix:sha256:<hex>            SHA-256 of the executed binary
// Names are resolved with getpwuid_r/getgrgid_r (NSS), and omitted when the
// id has no name.
//
// The path and digest need ptrace-read access to the process, which an agent
// that does not run as root lacks for other users' processes: then (and when
// the binary is gone) they are skipped, logged at debug, and the remaining
// selectors still attest the workload. An entry that requires them simply
// does not match. (SPIRE fails the whole attestation instead.)
//
// The digest is computed over the inode the process executes, opened through
// /proc/<pid>/exe, so replacing the file on disk after exec does not change
// it. Digests are cached by (device, inode, size, mtime, ctime), so a large
// binary is hashed once per version, not once per call.

#include <sys/types.h>

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <tuple>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "attestors/workload/workload_attestor.h"

namespace sigil::attestors::workload {

struct UnixAttestorOptions {
  // Where procfs is mounted. Tests point it at a fake tree laid out like
  // procfs (<pid>/status, <pid>/exe). Default: "/proc".
  std::string proc_root = "/proc";
  // Emit unix:path and unix:sha256 (SPIRE's `discover_workload_path`, which
  // defaults to false there). Default: true.
  bool discover_workload_path = true;
  // SPIRE's `workload_size_limit`, in bytes: a binary larger than this fails
  // attestation (FailedPrecondition) rather than being hashed; 0 means no
  // limit; a negative value disables unix:sha256. Default: 0.
  int64_t workload_size_limit = 0;
  // How many binary digests are remembered (oldest evicted first). Default: 1024.
  size_t digest_cache_entries = 1024;
};

class UnixAttestor final : public WorkloadAttestor {
 public:
  explicit UnixAttestor(UnixAttestorOptions options = {});

  // WorkloadAttestor
  const std::string& name() const override;
  // NotFound when <proc_root>/<pid>/status does not exist; Internal when it
  // cannot be read or lacks a well-formed Uid/Gid line, or when reading the
  // binary fails other than by lack of permission or absence;
  // FailedPrecondition when the binary exceeds workload_size_limit.
  absl::StatusOr<Selectors> Attest(const WorkloadProcess& process) override;

  // How many times a binary has actually been read and hashed (cache misses).
  uint64_t digests_computed() const;

 private:
  // (st_dev, st_ino, st_size, st_mtim, st_ctim).
  using DigestKey = std::tuple<uint64_t, uint64_t, int64_t, int64_t, int64_t>;

  // Appends unix:sha256, or returns OK without it when the binary cannot be
  // opened for lack of permission or because it is gone.
  absl::Status AppendDigest(const std::string& exe_link, Selectors* out);

  const UnixAttestorOptions options_;
  // Serializes hashing so that at most one binary is held in memory at once.
  absl::Mutex hash_mu_;
  mutable absl::Mutex cache_mu_;
  std::map<DigestKey, std::string> digests_ ABSL_GUARDED_BY(cache_mu_);
  std::list<DigestKey> digest_order_ ABSL_GUARDED_BY(cache_mu_);
  uint64_t digests_computed_ ABSL_GUARDED_BY(cache_mu_) = 0;
};

}  // namespace sigil::attestors::workload
