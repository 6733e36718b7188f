#include "attestors/workload/unix/unix_attestor.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/file_util.h"
#include "spdlog/spdlog.h"
#include "spiffe/crypto/encoding.h"

namespace sigil::attestors::workload {
namespace {

constexpr char kPluginName[] = "unix";
constexpr char kErrorPrefix[] = "workloadattestor(unix): ";

Selector Make(absl::string_view kind, absl::string_view value) {
  return Selector{kPluginName, absl::StrCat(kind, ":", value)};
}

class ScopedFd {
 public:
  explicit ScopedFd(int fd) : fd_(fd) {}
  ~ScopedFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Errors that mean "this agent may not look at that binary" or "it is gone":
// the path and digest are skipped rather than failing the attestation.
bool IsUnavailable(int err) { return err == EACCES || err == EPERM || err == ENOENT || err == ESRCH; }

// Values of a "Key:\tv1\tv2" line of /proc/<pid>/status; nullopt when absent.
std::optional<std::vector<std::string>> StatusField(absl::string_view status, absl::string_view key) {
  for (absl::string_view line : absl::StrSplit(status, '\n')) {
    absl::string_view rest = line;
    if (!absl::ConsumePrefix(&rest, key) || !absl::ConsumePrefix(&rest, ":")) continue;
    std::vector<std::string> values = absl::StrSplit(rest, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    return values;
  }
  return std::nullopt;
}

// The effective id of a "Uid:"/"Gid:" line (real, effective, saved, fs).
absl::StatusOr<uint32_t> EffectiveId(absl::string_view status, absl::string_view key,
                                     const std::string& path) {
  std::optional<std::vector<std::string>> values = StatusField(status, key);
  uint32_t id = 0;
  if (!values.has_value() || values->size() < 2 || !absl::SimpleAtoi((*values)[1], &id)) {
    return absl::InternalError(
        absl::StrCat(kErrorPrefix, path, ": missing or malformed \"", key, ":\" line"));
  }
  return id;
}

size_t NssBufferSize(int name) {
  long n = ::sysconf(name);
  return n > 0 ? static_cast<size_t>(n) : 16384;
}

std::optional<std::string> UserName(uid_t uid) {
  std::vector<char> buf(NssBufferSize(_SC_GETPW_R_SIZE_MAX));
  while (true) {
    struct passwd pw;
    struct passwd* result = nullptr;
    int rc = ::getpwuid_r(uid, &pw, buf.data(), buf.size(), &result);
    if (rc == ERANGE && buf.size() < (1u << 20)) {
      buf.resize(buf.size() * 2);
      continue;
    }
    if (rc != 0 || result == nullptr) return std::nullopt;
    return std::string(result->pw_name);
  }
}

std::optional<std::string> GroupName(gid_t gid) {
  std::vector<char> buf(NssBufferSize(_SC_GETGR_R_SIZE_MAX));
  while (true) {
    struct group gr;
    struct group* result = nullptr;
    int rc = ::getgrgid_r(gid, &gr, buf.data(), buf.size(), &result);
    if (rc == ERANGE && buf.size() < (1u << 24)) {
      buf.resize(buf.size() * 2);
      continue;
    }
    if (rc != 0 || result == nullptr) return std::nullopt;
    return std::string(result->gr_name);
  }
}

int64_t Nanos(const struct timespec& ts) { return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec; }

}  // namespace

UnixAttestor::UnixAttestor(UnixAttestorOptions options) : options_(std::move(options)) {}

const std::string& UnixAttestor::name() const {
  static const std::string* const kName = new std::string(kPluginName);
  return *kName;
}

uint64_t UnixAttestor::digests_computed() const {
  absl::MutexLock lock(&cache_mu_);
  return digests_computed_;
}

absl::StatusOr<Selectors> UnixAttestor::Attest(const WorkloadProcess& process) {
  const std::string dir = absl::StrCat(options_.proc_root, "/", process.pid);
  const std::string status_path = dir + "/status";
  absl::StatusOr<std::string> status = ReadFile(status_path);
  if (!status.ok()) {
    if (absl::IsNotFound(status.status())) {
      return absl::NotFoundError(absl::StrCat(kErrorPrefix, "process ", process.pid, " not found"));
    }
    return absl::InternalError(absl::StrCat(kErrorPrefix, status.status().message()));
  }

  absl::StatusOr<uint32_t> uid = EffectiveId(*status, "Uid", status_path);
  if (!uid.ok()) return uid.status();
  absl::StatusOr<uint32_t> gid = EffectiveId(*status, "Gid", status_path);
  if (!gid.ok()) return gid.status();

  Selectors out;
  out.push_back(Make("uid", absl::StrCat(*uid)));
  if (std::optional<std::string> user = UserName(*uid)) out.push_back(Make("user", *user));
  out.push_back(Make("gid", absl::StrCat(*gid)));
  if (std::optional<std::string> group = GroupName(*gid)) out.push_back(Make("group", *group));

  // "Groups:" is absent on very old kernels only; treat that as no groups.
  std::vector<std::string> groups = StatusField(*status, "Groups").value_or(std::vector<std::string>{});
  for (const std::string& g : groups) {
    uint32_t sgid = 0;
    if (!absl::SimpleAtoi(g, &sgid)) {
      return absl::InternalError(
          absl::StrCat(kErrorPrefix, status_path, ": malformed \"Groups:\" entry \"", g, "\""));
    }
    out.push_back(Make("supplementary_gid", g));
    if (std::optional<std::string> name = GroupName(sgid)) {
      out.push_back(Make("supplementary_group", *name));
    }
  }

  if (!options_.discover_workload_path) return out;

  const std::string exe_link = dir + "/exe";
  std::string target(4096, '\0');
  ssize_t n = ::readlink(exe_link.c_str(), target.data(), target.size());
  if (n < 0) {
    int err = errno;
    if (IsUnavailable(err)) {
      spdlog::debug("workloadattestor(unix): no path for pid {}: readlink {}: {}", process.pid, exe_link,
                    std::strerror(err));
      return out;
    }
    return absl::InternalError(
        absl::StrCat(kErrorPrefix, "path lookup: readlink ", exe_link, ": ", std::strerror(err)));
  }
  target.resize(static_cast<size_t>(n));
  out.push_back(Make("path", target));

  if (options_.workload_size_limit >= 0) {
    absl::Status s = AppendDigest(exe_link, &out);
    if (!s.ok()) return s;
  }
  return out;
}

absl::Status UnixAttestor::AppendDigest(const std::string& exe_link, Selectors* out) {
  ScopedFd fd(::open(exe_link.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    int err = errno;
    if (IsUnavailable(err)) {
      spdlog::debug("workloadattestor(unix): no sha256: open {}: {}", exe_link, std::strerror(err));
      return absl::OkStatus();
    }
    return absl::InternalError(
        absl::StrCat(kErrorPrefix, "SHA256 digest: open ", exe_link, ": ", std::strerror(err)));
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) {
    return absl::InternalError(
        absl::StrCat(kErrorPrefix, "SHA256 digest: fstat ", exe_link, ": ", std::strerror(errno)));
  }
  if (options_.workload_size_limit > 0 && st.st_size > options_.workload_size_limit) {
    return absl::FailedPreconditionError(absl::StrCat(kErrorPrefix, "SHA256 digest: workload ", exe_link,
                                                      " exceeds size limit (", st.st_size, " > ",
                                                      options_.workload_size_limit, ")"));
  }
  const DigestKey key{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
                      static_cast<int64_t>(st.st_size), Nanos(st.st_mtim), Nanos(st.st_ctim)};
  {
    absl::MutexLock lock(&cache_mu_);
    auto it = digests_.find(key);
    if (it != digests_.end()) {
      out->push_back(Make("sha256", it->second));
      return absl::OkStatus();
    }
  }

  std::string digest;
  {
    absl::MutexLock hash_lock(&hash_mu_);
    crypto::Sha256Hasher hasher;
    int64_t total = 0;
    char buf[1 << 16];
    while (true) {
      ssize_t r = ::read(fd.get(), buf, sizeof(buf));
      if (r < 0) {
        if (errno == EINTR) continue;
        return absl::InternalError(
            absl::StrCat(kErrorPrefix, "SHA256 digest: read ", exe_link, ": ", std::strerror(errno)));
      }
      if (r == 0) break;
      hasher.Update(absl::string_view(buf, static_cast<size_t>(r)));
      total += r;
      if (options_.workload_size_limit > 0 && total > options_.workload_size_limit) {
        return absl::FailedPreconditionError(absl::StrCat(kErrorPrefix, "SHA256 digest: workload ", exe_link,
                                                          " exceeds size limit (more than ",
                                                          options_.workload_size_limit, ")"));
      }
    }
    digest = crypto::HexEncode(hasher.Finish());
  }

  {
    absl::MutexLock lock(&cache_mu_);
    ++digests_computed_;
    if (digests_.emplace(key, digest).second) {
      digest_order_.push_back(key);
      while (digests_.size() > options_.digest_cache_entries && !digest_order_.empty()) {
        digests_.erase(digest_order_.front());
        digest_order_.pop_front();
      }
    }
  }
  out->push_back(Make("sha256", digest));
  return absl::OkStatus();
}

}  // namespace sigil::attestors::workload
