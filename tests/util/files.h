#pragma once

// Temporary directories and small file helpers for every module's tests.
// Header-only and dependent on GoogleTest alone, so that any test binary may
// include it.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "absl/strings/string_view.h"

namespace sigil::testing {

// A fresh directory /tmp/<prefix>-XXXXXX (mode 0700) that the caller owns
// and removes if it wants to. Always under /tmp, not $TMPDIR, so that Unix
// socket paths inside it stay well below their 107-byte limit. Aborts when
// no directory can be made: no test can go on without one.
inline std::string MakeTempDir(const std::string& prefix) {
  std::string tmpl = "/tmp/" + prefix + "-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) {
    std::perror("mkdtemp");
    std::abort();
  }
  return std::string(buf.data());
}

// Writes `data` to `path` (created or truncated) with permission bits
// `mode`, whatever the umask. A failure is a test failure (ADD_FAILURE)
// naming the path.
inline void WriteTestFile(const std::string& path, absl::string_view data, mode_t mode = 0644) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) {
    ADD_FAILURE() << "cannot create " << path << ": " << std::strerror(errno);
    return;
  }
  bool ok = ::fchmod(fd, mode) == 0;
  for (size_t done = 0; ok && done < data.size();) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0) ok = false;
  if (!ok) ADD_FAILURE() << "cannot write " << path << ": " << std::strerror(errno);
}

// The contents of `path`; empty when it cannot be read.
inline std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The source tree: $SIGIL_SOURCE_DIR (ctest sets it), else ".".
inline std::string SourceDir() {
  const char* dir = std::getenv("SIGIL_SOURCE_DIR");
  return dir != nullptr ? dir : ".";
}

// "<SourceDir()>/tests/testdata/<relative>" (checked-in fixtures).
inline std::string TestDataPath(const std::string& relative) {
  return SourceDir() + "/tests/testdata/" + relative;
}

// The contents of TestDataPath(relative). A missing or unreadable fixture
// is a test failure (ADD_FAILURE) naming the path, and gives "".
inline std::string ReadTestData(const std::string& relative) {
  const std::string path = TestDataPath(relative);
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    ADD_FAILURE() << "cannot read fixture " << path;
    return "";
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The permission bits of `path`; 0 when it cannot be stat'ed.
inline mode_t ModeOf(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

// A fresh directory (MakeTempDir) removed with everything in it when the
// object goes away. Not thread-safe; not copyable.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "sigil-test") : path_(MakeTempDir(prefix)) {}
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // "<path>/<name>"; nothing is created.
  std::string File(absl::string_view name) const { return path_ + "/" + std::string(name); }
  // Writes `data` to File(name) (WriteTestFile) and returns that path.
  std::string Write(absl::string_view name, absl::string_view data, mode_t mode = 0600) const {
    std::string file = File(name);
    WriteTestFile(file, data, mode);
    return file;
  }

 private:
  std::string path_;
};

}  // namespace sigil::testing
