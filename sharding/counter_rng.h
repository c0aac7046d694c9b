// A counter-based random stream: SplitMix64 seeded from (seed, stream, index), so any rank can
// draw the numbers of any row directly, with no state carried between rows.
#pragma once

#include <cmath>
#include <cstdint>

namespace sweep::sharding {

class CounterRng {
 public:
  CounterRng(uint64_t seed, uint64_t stream, uint64_t index)
      : state_(mix(mix(seed ^ 0x9E3779B97F4A7C15ULL) ^ stream) ^ mix(index)) {}

  uint64_t next() { return mix(state_ += 0x9E3779B97F4A7C15ULL); }
  // Uniform in [0, 1).
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  // Standard normal (Box-Muller).
  double normal() {
    double u1 = 1.0 - uniform();
    double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

 private:
  static uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  uint64_t state_;
};

}  // namespace sweep::sharding
