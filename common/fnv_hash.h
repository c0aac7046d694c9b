// FNV-1a (64-bit), the one hash behind job ids, data fingerprints and checkpoint checksums, and its
// 16-digit hexadecimal form. Header-only: every part may use it without linking anything.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

namespace sweep {

constexpr uint64_t kFnvOffset = 1469598103934665603ULL, kFnvPrime = 1099511628211ULL;

// Adds `size` bytes to `hash`, one byte at a time.
inline void fnv1a_bytes(uint64_t& hash, const void* data, size_t size) {
  const auto* bytes = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < size; ++i) hash = (hash ^ bytes[i]) * kFnvPrime;
}

// Adds `size` bytes to `hash` in 8-byte words, then the tail bytes: fast enough for gigabytes
// (a different value from fnv1a_bytes on the same bytes).
inline void fnv1a_words(uint64_t& hash, const void* data, size_t size) {
  const auto* bytes = static_cast<const uint8_t*>(data);
  const size_t words = size / 8;
  for (size_t i = 0; i < words; ++i) {
    uint64_t w;
    std::memcpy(&w, bytes + 8 * i, 8);
    hash = (hash ^ w) * kFnvPrime;
  }
  fnv1a_bytes(hash, bytes + 8 * words, size - 8 * words);
}

inline std::string hex_digits(uint64_t hash) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(hash));
  return text;
}

}  // namespace sweep
