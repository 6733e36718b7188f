#pragma once

// Small filesystem helpers with the durability and permission rules Sigil
// needs for key material and state: atomic replace, fsync, explicit modes.

#include <sys/types.h>

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sigil {

// Reads a whole file. NotFound if it does not exist, PermissionDenied if it
// cannot be opened for reading, Internal on read errors. Messages name the path.
absl::StatusOr<std::string> ReadFile(const std::string& path);

// Replaces `path` with `data` atomically: writes a temporary file in the same
// directory with `mode` (e.g. 0600 for keys), fsyncs it, renames it over
// `path` and fsyncs the directory. A crash leaves either the old or the new
// file, never a partial one. The mode is applied regardless of umask.
absl::Status WriteFileAtomic(const std::string& path, absl::string_view data, mode_t mode);

// Creates `path` and any missing parents with `mode` (existing directories are
// left as they are). FailedPrecondition if a component is not a directory.
absl::Status MakeDirs(const std::string& path, mode_t mode);

// Returns the directory part of `path` ("." when there is none).
std::string DirName(const std::string& path);

}  // namespace sigil
