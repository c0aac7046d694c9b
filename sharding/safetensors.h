// The safetensors format: an 8-byte little-endian header length N, N bytes of JSON header
// naming each tensor's dtype, shape and data_offsets, then the data buffer.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "sharding/mapped_file.h"

namespace sweep::sharding {

struct SafetensorsTensorInfo {
  std::string dtype;  // "F32", "BF16", ...
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte offsets relative to the data buffer
};

struct SafetensorsHeader {
  std::map<std::string, SafetensorsTensorInfo> tensors;
  std::map<std::string, std::string> metadata;
  uint64_t data_start = 0;  // absolute file offset of the data buffer
};

// Parses and validates the header: its length fits in the file, the JSON parses, every entry
// has dtype/shape/data_offsets, the dtype is known (F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL),
// end - begin == numel * itemsize and the offsets lie inside the file.
// Throws DataError("<file>: <what is wrong>") otherwise.
SafetensorsHeader read_safetensors_header(const std::filesystem::path& file);
// Same, for a file that is already mapped.
SafetensorsHeader read_safetensors_header(const MappedFile& file);

// Loads every tensor as a contiguous CPU tensor of the matching dtype that owns its memory.
std::map<std::string, torch::Tensor> read_safetensors(const std::filesystem::path& file);

// Writes the tensors (moved to CPU and made contiguous) in the given order, with optional
// __metadata__. The header JSON is padded with spaces to a multiple of 8 bytes. Writes
// "<file>.tmp" and renames it over `file`, so readers never see a half-written file.
// Throws std::runtime_error naming the file on I/O failure, std::invalid_argument for a
// tensor name or dtype the format cannot hold.
void write_safetensors(const std::filesystem::path& file,
                       const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace sweep::sharding
