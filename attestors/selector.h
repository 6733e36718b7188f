#pragma once

#include <string>
#include <tuple>
#include <vector>

namespace sigil::attestors {

// A selector as attestors produce them: `unix:uid:1000` is {type "unix",
// value "uid:1000"}.
struct Selector {
  std::string type;
  std::string value;

  std::string ToString() const { return type + ":" + value; }
  bool operator==(const Selector& o) const { return type == o.type && value == o.value; }
  bool operator<(const Selector& o) const { return std::tie(type, value) < std::tie(o.type, o.value); }
};

using Selectors = std::vector<Selector>;

}  // namespace sigil::attestors
