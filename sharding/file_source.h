// FileActivationSource: activation rows read straight from memory-mapped .safetensors/.npy
// shards or SAELens caches, every shard validated up front so bad data fails fast with a clear
// message.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "sharding/mapped_file.h"

namespace sweep::sharding {

enum class RowDtype { F32, F16, BF16 };

// The files the globs match, in the globs' order, each glob's matches sorted, a file matched twice
// kept where it first appears; a pattern matching nothing is a DataError.
std::vector<std::filesystem::path> expand_globs(const std::vector<std::string>& globs);

// A run of rows stored one after another in one file: a whole .npy/.safetensors shard, or one
// record batch of a SAELens cache's .arrow file.
struct ShardInfo {
  std::filesystem::path path;
  RowDtype dtype = RowDtype::F32;
  int64_t rows = 0;
  int64_t d_in = 0;
  uint64_t data_start = 0;  // absolute file offset of row 0
  size_t file = 0;          // which of the source's mapped files holds the rows
  int64_t first_row = 0;    // the row within that file of row 0 (what messages call it)
};

// Every error is a DataError naming the file (or glob pattern) and the problem, followed by a
// line "HINT: ..." that says what to do about it.
class FileActivationSource {
 public:
  // Expands the globs (sorted, de-duplicated; a pattern matching nothing is an error), then
  // validates and maps every shard. A .safetensors shard uses the tensor named `tensor_name`,
  // else the file's only 2-D tensor; it must be 2-D F32/F16/BF16. A .npy shard must be a 2-D,
  // C-ordered little-endian float32 or float16 array. All shards must agree on d_in.
  FileActivationSource(const std::vector<std::string>& globs, const std::string& tensor_name);
  // Rows already validated by another reader (a SAELens cache): the runs in order, and the mapped
  // files they index. All runs must agree on d_in.
  FileActivationSource(std::vector<ShardInfo> runs, std::vector<MappedFile> files);

  int64_t num_rows() const { return row_starts_.back(); }
  int64_t d_in() const { return d_in_; }
  const std::vector<ShardInfo>& shards() const { return shards_; }

  // Rows at global indices (row r of the shards concatenated in sorted order) as float32,
  // shape [indices.size(), d_in]. Throws DataError naming the shard file and the row within it
  // if any value is NaN or Inf, std::out_of_range for an index outside [0, num_rows()).
  torch::Tensor rows(const std::vector<int64_t>& indices) const;

  // Where a global row lives: {shard index, row within that shard}.
  std::pair<size_t, int64_t> locate(int64_t global_row) const;

 private:
  const uint8_t* row_bytes(size_t shard, int64_t row) const;
  void check_finite(const torch::Tensor& rows, const std::vector<int64_t>& indices) const;

  std::vector<ShardInfo> shards_;
  std::vector<MappedFile> files_;    // indexed by ShardInfo::file
  std::vector<int64_t> row_starts_;  // global index of each shard's first row, then num_rows
  int64_t d_in_ = 0;
};

}  // namespace sweep::sharding
