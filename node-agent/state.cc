#include "node-agent/state.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"

namespace sigil::agent {
namespace {

absl::Status RenameDurably(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot rename ", from, " onto ", to, ": ", std::strerror(errno)));
  }
  int dir = ::open(DirName(to).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  return absl::OkStatus();
}

absl::Status RemoveIfPresent(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return absl::InternalError(absl::StrCat("cannot remove ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace

AgentStateStore::AgentStateStore(std::string data_dir, spiffe::TrustDomain td)
    : dir_(std::move(data_dir)), td_(std::move(td)) {}

std::string AgentStateStore::Path(const char* file) const { return absl::StrCat(dir_, "/", file); }

absl::Status AgentStateStore::Prepare() {
  struct stat st;
  if (::stat(dir_.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) {
      return absl::FailedPreconditionError(absl::StrCat("data_dir ", dir_, " exists and is not a directory"));
    }
    if ((st.st_mode & 0077) != 0) {
      spdlog::warn("data_dir {} is accessible to other users (mode {:o}); it holds the agent's private key",
                   dir_, st.st_mode & 0777);
    }
    return absl::OkStatus();
  }
  SIGIL_RETURN_IF_ERROR(MakeDirs(dir_, 0700));
  if (::chmod(dir_.c_str(), 0700) != 0) {
    return absl::InternalError(absl::StrCat("cannot chmod data_dir ", dir_, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

DataDirLock::~DataDirLock() { ::close(fd_); }

absl::StatusOr<std::unique_ptr<DataDirLock>> AgentStateStore::Lock() {
  const std::string path = Path(kLockFile);
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return absl::InternalError(absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) {
      return absl::FailedPreconditionError(
          absl::StrCat("data_dir ", dir_, " is in use by another sigil-agent (", path, " is locked)"));
    }
    return absl::InternalError(absl::StrCat("cannot lock ", path, ": ", std::strerror(err)));
  }
  return std::unique_ptr<DataDirLock>(new DataDirLock(fd));
}

absl::StatusOr<spiffe::X509Svid> AgentStateStore::LoadSvid() const {
  const std::string cert_path = Path(kAgentSvidFile);
  const std::string key_path = Path(kAgentKeyFile);
  const std::string next_cert_path = cert_path + ".next";
  auto key = ReadFile(key_path);
  if (!key.ok()) {
    if (absl::IsNotFound(key.status())) {
      return absl::NotFoundError(absl::StrCat("no agent SVID stored in ", dir_));
    }
    return key.status();
  }
  auto certs = ReadFile(cert_path);
  if (!certs.ok() && !absl::IsNotFound(certs.status())) return certs.status();
  absl::StatusOr<spiffe::X509Svid> svid =
      certs.ok() ? spiffe::X509Svid::Parse(*certs, *key) : absl::NotFoundError(absl::StrCat(cert_path, " is missing"));
  if (!svid.ok() && Exists(next_cert_path)) {
    // A replacement was interrupted after the key was renamed.
    auto next = ReadFile(next_cert_path);
    if (next.ok()) {
      auto recovered = spiffe::X509Svid::Parse(*next, *key);
      if (recovered.ok()) {
        SIGIL_RETURN_IF_ERROR(RenameDurably(next_cert_path, cert_path));
        spdlog::info("completed an interrupted agent SVID replacement in {}", dir_);
        svid = std::move(recovered);
      }
    }
  }
  if (!svid.ok()) {
    if (absl::IsNotFound(svid.status())) return svid.status();
    return absl::InvalidArgumentError(
        absl::StrCat(cert_path, " / ", key_path, " do not hold a usable agent SVID: ", svid.status().message()));
  }
  if (!svid->id.MemberOf(td_)) {
    return absl::InvalidArgumentError(absl::StrCat(cert_path, ": the stored agent SVID ", svid->id.ToString(),
                                                   " is not of trust domain ", td_.name()));
  }
  return svid;
}

absl::Status AgentStateStore::SaveSvid(const spiffe::X509Svid& svid) {
  const std::string cert_path = Path(kAgentSvidFile);
  const std::string key_path = Path(kAgentKeyFile);
  SIGIL_RETURN_IF_ERROR(WriteFileAtomic(key_path + ".next", svid.key.ToPkcs8Pem(), 0600));
  SIGIL_RETURN_IF_ERROR(WriteFileAtomic(cert_path + ".next", crypto::ToPem(svid.chain), 0644));
  SIGIL_RETURN_IF_ERROR(RenameDurably(key_path + ".next", key_path));
  return RenameDurably(cert_path + ".next", cert_path);
}

absl::Status AgentStateStore::DeleteSvid() {
  for (const char* f : {kAgentSvidFile, kAgentKeyFile}) {
    SIGIL_RETURN_IF_ERROR(RemoveIfPresent(Path(f)));
    SIGIL_RETURN_IF_ERROR(RemoveIfPresent(Path(f) + ".next"));
  }
  return absl::OkStatus();
}

absl::StatusOr<spiffe::Bundle> AgentStateStore::LoadBundle() const {
  const std::string path = Path(kBundleFile);
  SIGIL_ASSIGN_OR_RETURN(std::string pem, ReadFile(path));
  auto bundle = spiffe::Bundle::ParseX509Pem(td_, pem);
  if (!bundle.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", bundle.status().message()));
  if (bundle->x509_authorities().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, " holds no certificate"));
  }
  return bundle;
}

absl::Status AgentStateStore::SaveBundle(const spiffe::Bundle& bundle) {
  return WriteFileAtomic(Path(kBundleFile), bundle.X509AuthoritiesPem(), 0644);
}

}  // namespace sigil::agent
