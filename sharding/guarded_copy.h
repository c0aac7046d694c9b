// Copies out of memory-mapped files with a bus error (SIGBUS: the file was truncated under its
// mapping) turned into a return value, so that a shard cut short mid-sweep fails its job with a
// message instead of killing the process.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace sweep::sharding {

// Copies rows[i] (each `row_bytes` long) to out + i * row_bytes. Returns the index of the row
// whose read raised SIGBUS (the rows after it are not copied), or rows.size() when all were.
size_t copy_rows_guarded(uint8_t* out, const std::vector<const uint8_t*>& rows, size_t row_bytes);

}  // namespace sweep::sharding
