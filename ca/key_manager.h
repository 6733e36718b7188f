#pragma once

// Key managers hold the CA's private keys (SPIRE's KeyManager plugin kind).
// Built-ins: `memory` (keys die with the process) and `disk` (a 0600 file,
// replaced atomically, so keys survive restarts and crashes).

#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "spiffe/crypto/key.h"

namespace sigil::ca {

class KeyManager {
 public:
  virtual ~KeyManager() = default;

  // Generates a new key of `type` under `key_id`, replacing any key with that
  // id, and persists it before returning. Unavailable/Internal when it cannot
  // be persisted (the previous key, if any, is kept).
  virtual absl::StatusOr<crypto::PrivateKey> GenerateKey(const std::string& key_id,
                                                         crypto::KeyType type) = 0;
  // Returns the key stored under `key_id`; NotFound when there is none.
  virtual absl::StatusOr<crypto::PrivateKey> GetKey(const std::string& key_id) const = 0;
  // Forgets `key_id` (persisted before returning); OK when it is absent.
  virtual absl::Status DeleteKey(const std::string& key_id) = 0;
  // The plugin name ("memory", "disk").
  virtual const char* name() const = 0;
};

// Keys in process memory only. Thread-safe.
class MemoryKeyManager final : public KeyManager {
 public:
  // ca::KeyManager
  absl::StatusOr<crypto::PrivateKey> GenerateKey(const std::string& key_id,
                                                 crypto::KeyType type) override;
  absl::StatusOr<crypto::PrivateKey> GetKey(const std::string& key_id) const override;
  absl::Status DeleteKey(const std::string& key_id) override;
  const char* name() const override { return "memory"; }

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, crypto::PrivateKey> keys_ ABSL_GUARDED_BY(mu_);
};

// Keys in one JSON file ({"keys": {"<id>": "<base64 PKCS#8>"}}), mode 0600,
// rewritten atomically on every change. Thread-safe.
class DiskKeyManager final : public KeyManager {
 public:
  // Loads `keys_path` when it exists (creating its directory, 0700, when not).
  // InvalidArgument naming the path when the file is malformed or holds an
  // unparsable key; FailedPrecondition when the file is readable by others
  // than its owner (mode wider than 0600).
  static absl::StatusOr<std::unique_ptr<DiskKeyManager>> Create(const std::string& keys_path);

  // ca::KeyManager
  absl::StatusOr<crypto::PrivateKey> GenerateKey(const std::string& key_id,
                                                 crypto::KeyType type) override;
  absl::StatusOr<crypto::PrivateKey> GetKey(const std::string& key_id) const override;
  absl::Status DeleteKey(const std::string& key_id) override;
  const char* name() const override { return "disk"; }

 private:
  explicit DiskKeyManager(std::string path) : path_(std::move(path)) {}
  absl::Status SaveLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string path_;
  mutable absl::Mutex mu_;
  std::map<std::string, crypto::PrivateKey> keys_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sigil::ca
