#pragma once

// What sigil-agent keeps on disk between runs, in its data_dir (0700):
//   agent_svid.pem  the agent's X509-SVID chain, leaf first (0644)
//   agent_svid.key  its private key, PKCS#8 PEM (0600)
//   bundle.pem      the trust domain's X.509 authorities (0644)
// With these the agent resumes after a restart without re-attesting.
//
// Replacing the SVID is crash-safe: the new pair is written next to the old
// one (agent_svid.{key,pem}.next), then renamed over it, key first. A crash
// between the two renames leaves a new key with the old certificate;
// LoadSvid notices that they do not match and completes the switch.

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "spiffe/bundle.h"
#include "spiffe/id.h"
#include "spiffe/x509svid.h"

namespace sigil::agent {

inline constexpr char kAgentSvidFile[] = "agent_svid.pem";
inline constexpr char kAgentKeyFile[] = "agent_svid.key";
inline constexpr char kBundleFile[] = "bundle.pem";

inline constexpr char kLockFile[] = "agent.lock";

// An exclusive lock on a data_dir (flock on its agent.lock file), so two
// agents never share one identity; released when destroyed.
class DataDirLock {
 public:
  ~DataDirLock();
  DataDirLock(const DataDirLock&) = delete;
  DataDirLock& operator=(const DataDirLock&) = delete;

 private:
  friend class AgentStateStore;
  explicit DataDirLock(int fd) : fd_(fd) {}
  int fd_;
};

// Not thread-safe: one owner (the agent's identity manager) calls it.
class AgentStateStore {
 public:
  AgentStateStore(std::string data_dir, spiffe::TrustDomain td);

  // Creates data_dir (0700) when missing. FailedPrecondition when the path
  // exists and is not a directory; errors of MakeDirs otherwise.
  absl::Status Prepare();
  // Locks data_dir (after Prepare). FailedPrecondition when another process
  // (or another agent in this one) holds the lock.
  absl::StatusOr<std::unique_ptr<DataDirLock>> Lock();

  // The stored SVID and key. NotFound when none is stored; InvalidArgument
  // naming the file when a file is unreadable as an SVID (corrupt, key does
  // not match, not of the agent's trust domain).
  absl::StatusOr<spiffe::X509Svid> LoadSvid() const;
  // Writes the SVID and key (see the file comment for the order). Errors of
  // the file system, naming the file.
  absl::Status SaveSvid(const spiffe::X509Svid& svid);
  // Removes the SVID and key (not the bundle). Missing files are fine.
  absl::Status DeleteSvid();

  // NotFound when no bundle is stored; InvalidArgument when it does not
  // parse or holds no certificate.
  absl::StatusOr<spiffe::Bundle> LoadBundle() const;
  absl::Status SaveBundle(const spiffe::Bundle& bundle);

  const std::string& data_dir() const { return dir_; }
  std::string Path(const char* file) const;

 private:
  const std::string dir_;
  const spiffe::TrustDomain td_;
};

}  // namespace sigil::agent
