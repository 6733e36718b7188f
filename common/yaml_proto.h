#pragma once

// Configuration files are YAML whose schema is a protobuf message: keys are
// the message's field names, so the .proto is the one reference for what a
// config may contain.

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace sigil {

// Merges the YAML document `yaml` into `msg`.
//  - Keys are proto field names; an unknown key is an error naming its path
//    (`server.bind_prot: unknown key`).
//  - google.protobuf.Duration fields take Go-style durations ("90s", "1h30m").
//  - Enums take their value names; bools take true/false; numbers are range
//    checked; repeated fields take sequences; map<string, V> fields take
//    mappings.
// Every problem is collected; the returned InvalidArgument lists them all,
// one per line. `msg` may be partially filled when an error is returned.
absl::Status MergeYamlIntoProto(absl::string_view yaml, google::protobuf::Message* msg);

}  // namespace sigil
