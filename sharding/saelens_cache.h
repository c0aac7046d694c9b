// SAELens activation caches: the directory `Dataset.save_to_disk` writes for CacheActivationsRunner
// (dataset_info.json, state.json, data-NNNNN-of-NNNNN.arrow), one row per sequence, with an
// Array2D(context_size, d_in) column named after the hook and a token_ids column. Activation row r
// is position r % context_size of sequence r / context_size, sequences in the shards' order.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "sharding/file_source.h"
#include "sharding/mapped_file.h"

namespace sweep::sharding {

// Where one record batch's token ids are: `count` integers of `bytes` bytes each from `start`.
struct TokenRun {
  size_t file = 0;
  uint64_t start = 0;
  int64_t count = 0;
  int bytes = 4;
};

struct SaelensCache {
  std::string column;          // the activation column (the hook's name)
  int64_t context_size = 0;
  int64_t d_in = 0;
  std::vector<ShardInfo> runs;  // one per non-empty record batch, in row order
  std::vector<MappedFile> files;  // the .arrow shards in state.json's order; runs index them
  std::vector<TokenRun> tokens;   // parallel to runs; empty where the cache has no token_ids
};

// Opens the cache and validates every shard against dataset_info.json: the schema, the dtype, the
// shapes of every sequence (every list's length), no nulls, and that each stream is complete.
// `column` names the activation column; "" picks the only Array2D feature. Throws DataError naming
// the file and the problem, with a HINT line.
SaelensCache open_saelens_cache(const std::filesystem::path& dir, const std::string& column);

// The cache's files (dataset_info.json, state.json, then the shards state.json lists), for
// fingerprints. Reads only state.json.
std::vector<std::filesystem::path> saelens_cache_files(const std::filesystem::path& dir);

// The token id of every activation row as int64 [rows]. Throws DataError when the cache has no
// token_ids column.
torch::Tensor saelens_token_ids(const SaelensCache& cache, const std::filesystem::path& dir);

}  // namespace sweep::sharding
