#include "common/clock.h"

namespace sigil {

RealClock* RealClock::Get() {
  static RealClock* clock = new RealClock();
  return clock;
}

}  // namespace sigil
