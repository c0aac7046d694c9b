// NumPy .npy files (format versions 1.0, 2.0 and 3.0): header parsing with validation,
// and a writer for float32/float16/int64 arrays in C order.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "sharding/mapped_file.h"

namespace sweep::sharding {

struct NpyHeader {
  std::string descr;  // e.g. "<f4"
  bool fortran_order = false;
  std::vector<int64_t> shape;
  uint64_t data_start = 0;  // absolute file offset of the array data
};

// Validates the magic, the version, the header dict (exactly the keys descr, fortran_order and
// shape) and that the file size equals data_start + numel * itemsize.
// Throws DataError("<file>: <what is wrong>") otherwise.
NpyHeader read_npy_header(const std::filesystem::path& file);
// Same, for a file that is already mapped.
NpyHeader read_npy_header(const MappedFile& file);

// A 1-D little-endian int16, int32 or int64 array (token ids, classes) as int64. Throws DataError
// naming the file and `what` the array should hold otherwise.
torch::Tensor read_int_vector_npy(const std::filesystem::path& file, const std::string& what);

// Writes a float32, float16 or int64 tensor (moved to CPU first) in C order.
// Throws std::runtime_error naming the file on I/O failure, std::invalid_argument for other dtypes.
void write_npy(const std::filesystem::path& file, const torch::Tensor& tensor);

}  // namespace sweep::sharding
