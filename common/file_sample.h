// A file's size, modification time and a hash of samples of its contents: the first 64 KiB, 32
// blocks of 4 KiB at evenly spaced offsets and the last 4 KiB (FNV-1a). Cheap at any size, and it
// tells a file truncated, extended or overwritten in any sampled block from the one it was. Behind
// the data fingerprints of a resume and the checksums of a job's exported SAE.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace sweep {

struct FileSample {
  uint64_t bytes = 0;
  int64_t mtime_ns = 0;
  std::string hash;  // 16 hexadecimal digits
};

// Opens without waiting on a FIFO; throws std::runtime_error naming the file when it cannot be read.
FileSample sample_file(const std::filesystem::path& path);

}  // namespace sweep
