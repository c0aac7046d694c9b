// The unit that keeps a size readable: TiB with three digits, GiB with two decimals, MiB and KiB
// with one, else bytes.
#include "common/byte_size.h"

#include <cstdio>

namespace sweep {

std::string byte_size(double bytes) {
  constexpr double kKiB = 1024.0, kMiB = kKiB * 1024.0, kGiB = kMiB * 1024.0, kTiB = kGiB * 1024.0;
  char buf[64];
  if (bytes >= kTiB) {
    std::snprintf(buf, sizeof buf, "%.3g TiB", bytes / kTiB);  // estimates of impossible sizes reach 1e30
  } else if (bytes >= kGiB) {
    std::snprintf(buf, sizeof buf, "%.2f GiB", bytes / kGiB);
  } else if (bytes >= kMiB) {
    std::snprintf(buf, sizeof buf, "%.1f MiB", bytes / kMiB);
  } else if (bytes >= kKiB) {
    std::snprintf(buf, sizeof buf, "%.1f KiB", bytes / kKiB);
  } else {
    std::snprintf(buf, sizeof buf, "%.0f bytes", bytes);
  }
  return buf;
}

}  // namespace sweep
