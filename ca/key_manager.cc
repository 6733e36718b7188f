#include "ca/key_manager.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/file_util.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "spiffe/crypto/encoding.h"

namespace sigil::ca {
namespace {

// Overwrites a buffer that held key material before it is released.
void Wipe(std::string* s) {
  volatile char* p = s->data();
  for (size_t i = 0; i < s->size(); ++i) p[i] = 0;
  s->clear();
}

absl::Status ValidateKeyId(const std::string& key_id) {
  if (key_id.empty()) return absl::InvalidArgumentError("key_id must not be empty");
  return absl::OkStatus();
}

absl::Status KeyNotFound(const std::string& key_id) {
  return absl::NotFoundError(absl::StrCat("keymanager: no key with id \"", key_id, "\""));
}

}  // namespace

// ---- MemoryKeyManager ----

absl::StatusOr<crypto::PrivateKey> MemoryKeyManager::GenerateKey(const std::string& key_id,
                                                                 crypto::KeyType type) {
  SIGIL_RETURN_IF_ERROR(ValidateKeyId(key_id));
  SIGIL_ASSIGN_OR_RETURN(crypto::PrivateKey key, crypto::PrivateKey::Generate(type));
  absl::MutexLock lock(&mu_);
  keys_.insert_or_assign(key_id, key);
  return key;
}

absl::StatusOr<crypto::PrivateKey> MemoryKeyManager::GetKey(const std::string& key_id) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = keys_.find(key_id);
  if (it == keys_.end()) return KeyNotFound(key_id);
  return it->second;
}

absl::Status MemoryKeyManager::DeleteKey(const std::string& key_id) {
  absl::MutexLock lock(&mu_);
  keys_.erase(key_id);
  return absl::OkStatus();
}

// ---- DiskKeyManager ----

absl::StatusOr<std::unique_ptr<DiskKeyManager>> DiskKeyManager::Create(
    const std::string& keys_path) {
  if (keys_path.empty()) {
    return absl::InvalidArgumentError("keymanager(disk): keys_path must not be empty");
  }
  auto manager = std::unique_ptr<DiskKeyManager>(new DiskKeyManager(keys_path));

  struct stat st;
  if (::stat(keys_path.c_str(), &st) != 0) {
    int err = errno;
    if (err != ENOENT) {
      std::string msg = absl::StrCat("keymanager(disk): cannot stat keys file \"", keys_path,
                                     "\": ", std::strerror(err));
      return err == EACCES ? absl::PermissionDeniedError(msg) : absl::FailedPreconditionError(msg);
    }
    absl::Status dirs = MakeDirs(DirName(keys_path), 0700);
    if (!dirs.ok()) {
      return absl::Status(dirs.code(), absl::StrCat("keymanager(disk): cannot create the directory of \"",
                                                    keys_path, "\": ", dirs.message()));
    }
    return manager;
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat("keymanager(disk): keys file \"", keys_path, "\" is not a regular file"));
  }
  const mode_t perms = st.st_mode & 07777;
  if ((perms & ~static_cast<mode_t>(0600)) != 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "keymanager(disk): keys file \"%s\" has mode %04o, wider than 0600; it holds private keys "
        "and must be accessible by its owner only (chmod 600)",
        keys_path, perms));
  }

  absl::StatusOr<std::string> text = ReadFile(keys_path);
  if (!text.ok()) {
    return absl::Status(text.status().code(),
                        absl::StrCat("keymanager(disk): ", text.status().message()));
  }
  const auto malformed = [&keys_path](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("keymanager(disk): keys file \"", keys_path, "\" is malformed: ", why));
  };
  nlohmann::json doc = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  Wipe(&*text);
  if (doc.is_discarded()) return malformed("not valid JSON");
  if (!doc.is_object()) return malformed("not a JSON object");
  auto keys_it = doc.find("keys");
  if (keys_it == doc.end() || !keys_it->is_object()) {
    return malformed("\"keys\" is missing or not an object");
  }
  std::map<std::string, crypto::PrivateKey> keys;
  for (auto it = keys_it->begin(); it != keys_it->end(); ++it) {
    if (!it.value().is_string()) {
      return malformed(absl::StrCat("key \"", it.key(), "\" is not a string"));
    }
    absl::StatusOr<std::string> der = crypto::Base64Decode(it.value().get_ref<const std::string&>());
    if (!der.ok()) return malformed(absl::StrCat("key \"", it.key(), "\" is not valid base64"));
    absl::StatusOr<crypto::PrivateKey> key = crypto::PrivateKey::FromPkcs8Der(*der);
    Wipe(&*der);
    if (!key.ok()) {
      return malformed(absl::StrCat("key \"", it.key(), "\" is not a valid PKCS#8 key: ",
                                    key.status().message()));
    }
    keys.emplace(it.key(), *std::move(key));
  }
  for (auto& item : keys_it->items()) {
    if (item.value().is_string()) Wipe(&item.value().get_ref<std::string&>());
  }
  {
    absl::MutexLock lock(&manager->mu_);
    manager->keys_ = std::move(keys);
  }
  return manager;
}

absl::Status DiskKeyManager::SaveLocked() const {
  nlohmann::json keys = nlohmann::json::object();
  for (const auto& [id, key] : keys_) {
    std::string der = key.ToPkcs8Der();
    keys[id] = crypto::Base64Encode(der);
    Wipe(&der);
  }
  nlohmann::json doc = {{"keys", std::move(keys)}};
  std::string data = doc.dump(2);
  for (auto& item : doc["keys"].items()) Wipe(&item.value().get_ref<std::string&>());
  absl::Status status = WriteFileAtomic(path_, data, 0600);
  Wipe(&data);
  if (!status.ok()) {
    return absl::Status(status.code(), absl::StrCat("keymanager(disk): cannot save keys file \"",
                                                    path_, "\": ", status.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<crypto::PrivateKey> DiskKeyManager::GenerateKey(const std::string& key_id,
                                                               crypto::KeyType type) {
  SIGIL_RETURN_IF_ERROR(ValidateKeyId(key_id));
  SIGIL_ASSIGN_OR_RETURN(crypto::PrivateKey key, crypto::PrivateKey::Generate(type));
  absl::MutexLock lock(&mu_);
  std::optional<crypto::PrivateKey> previous;
  if (auto it = keys_.find(key_id); it != keys_.end()) previous = it->second;
  keys_.insert_or_assign(key_id, key);
  absl::Status saved = SaveLocked();
  if (!saved.ok()) {
    if (previous.has_value()) {
      keys_.insert_or_assign(key_id, *previous);
    } else {
      keys_.erase(key_id);
    }
    return saved;
  }
  return key;
}

absl::StatusOr<crypto::PrivateKey> DiskKeyManager::GetKey(const std::string& key_id) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = keys_.find(key_id);
  if (it == keys_.end()) return KeyNotFound(key_id);
  return it->second;
}

absl::Status DiskKeyManager::DeleteKey(const std::string& key_id) {
  absl::MutexLock lock(&mu_);
  auto it = keys_.find(key_id);
  if (it == keys_.end()) return absl::OkStatus();
  crypto::PrivateKey previous = it->second;
  keys_.erase(it);
  absl::Status saved = SaveLocked();
  if (!saved.ok()) {
    keys_.emplace(key_id, std::move(previous));
    return saved;
  }
  return absl::OkStatus();
}

}  // namespace sigil::ca
