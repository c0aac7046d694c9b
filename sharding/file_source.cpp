// FileActivationSource: glob expansion, per-shard validation with actionable hints, and row
// gathering from the mappings (half-precision rows are staged and converted by torch).
#include "sharding/file_source.h"

#include <glob.h>

#include <algorithm>
#include <cmath>
#include <array>
#include <cstring>
#include <set>
#include <sstream>

#include "sharding/data_error.h"
#include "sharding/guarded_copy.h"
#include "sharding/npy.h"
#include "sharding/safetensors.h"

namespace sweep::sharding {
namespace {

constexpr const char* kCorruptHint =
    "the file is corrupt or was not written completely; regenerate it, or leave it out of the glob";

// Runs `read`, appending a HINT line to any DataError it throws.
template <typename Read>
auto with_hint(Read read, const std::string& hint) {
  try {
    return read();
  } catch (const DataError& e) {
    throw DataError(std::string(e.what()) + "\nHINT: " + hint);
  }
}

std::vector<std::string> glob_matches(const std::string& pattern) {
  glob_t found{};
  const int rc = ::glob(pattern.c_str(), 0, nullptr, &found);
  std::vector<std::string> matches(found.gl_pathv, found.gl_pathv + (rc == 0 ? found.gl_pathc : 0));
  ::globfree(&found);
  if (rc == GLOB_NOMATCH)
    fail_with_hint(pattern, "glob pattern matches no file",
         std::string("check the path (a relative pattern is resolved from the current directory) and that the "
                     "activation files exist") +
             (pattern.find_first_of("[]") != std::string::npos
                  ? "; [ and ] are glob syntax (x[1].npy matches x1.npy): write a literal [ as [[] and ] as []]"
                  : ""));
  if (rc != 0)
    fail_with_hint(pattern, "glob expansion failed", "check that the directories in the pattern are readable");
  return matches;
}

}  // namespace

std::vector<std::filesystem::path> expand_globs(const std::vector<std::string>& globs) {
  if (globs.empty())
    fail_with_hint("activation files", "no glob patterns given",
         "list the .safetensors/.npy activation files to train on");
  // In data.paths order, each glob's matches sorted (glob() sorts them); a file that two globs
  // match is read once, where the first of them puts it.
  std::vector<std::filesystem::path> matches;
  std::set<std::string> seen;
  for (const std::string& pattern : globs) {
    for (const auto& found : glob_matches(pattern)) {
      // Opening a FIFO would wait for a writer, a device would be read without end.
      if (!std::filesystem::is_regular_file(found))
        fail_with_hint(found, "is not a regular file (a directory, FIFO or device, or a link to one)",
             "give data.paths globs that match the activation files only");
      if (seen.insert(found).second) matches.emplace_back(found);
    }
  }
  return matches;
}

namespace {

size_t itemsize(RowDtype dtype) { return dtype == RowDtype::F32 ? 4 : 2; }

torch::ScalarType scalar_type(RowDtype dtype) {
  switch (dtype) {
    case RowDtype::F32:
      return torch::kFloat;
    case RowDtype::F16:
      return torch::kHalf;
    case RowDtype::BF16:
      return torch::kBFloat16;
  }
  throw std::logic_error("unknown RowDtype");
}

// Fills rows/d_in after checking that `shape` is a non-empty [rows, d_in] matrix.
void set_matrix_shape(ShardInfo& shard, const std::vector<int64_t>& shape, const std::string& what) {
  const std::string file = shard.path.string();
  if (shape.size() != 2)
    fail_with_hint(file, what + " has shape " + shape_string(shape) + "; activations must be 2-D [rows, d_in]",
         "store the activations as one [rows, d_in] matrix per file (flatten batch and sequence dimensions)");
  if (shape[0] == 0 || shape[1] == 0)
    fail_with_hint(file, what + " has shape " + shape_string(shape) + ", which holds no activations",
         "delete the empty shard or leave it out of the glob");
  shard.rows = shape[0];
  shard.d_in = shape[1];
}

// The tensor named `tensor_name`, else the only 2-D tensor in the file.
std::string pick_tensor(const SafetensorsHeader& header, const std::string& tensor_name,
                        const std::string& file) {
  if (header.tensors.count(tensor_name) != 0) return tensor_name;
  std::vector<std::string> matrices;
  std::string found;
  for (const auto& [name, info] : header.tensors) {
    if (info.shape.size() == 2) matrices.push_back(name);
    found += (found.empty() ? "'" : ", '") + name + "' " + shape_string(info.shape);
  }
  if (matrices.size() == 1) return matrices.front();
  fail_with_hint(file,
       "no tensor named '" + tensor_name + "' and " + std::to_string(matrices.size()) +
           " 2-D tensors to fall back on; tensors found: " + (found.empty() ? "(none)" : found),
       "set the activation tensor name to the tensor that holds the [rows, d_in] activations");
}

RowDtype safetensors_dtype(const std::string& dtype, const std::string& what, const std::string& file) {
  if (dtype == "F32") return RowDtype::F32;
  if (dtype == "F16") return RowDtype::F16;
  if (dtype == "BF16") return RowDtype::BF16;
  fail_with_hint(file, what + " has dtype " + dtype + "; activations must be F32, F16 or BF16",
       "convert the activations to float32, float16 or bfloat16 when saving them");
}

ShardInfo inspect_safetensors(const MappedFile& file, const std::string& tensor_name) {
  const std::string path = file.path().string();
  const SafetensorsHeader header = with_hint([&] { return read_safetensors_header(file); }, kCorruptHint);
  const std::string name = pick_tensor(header, tensor_name, path);
  const SafetensorsTensorInfo& info = header.tensors.at(name);
  const std::string what = "tensor '" + name + "'";

  ShardInfo shard{file.path()};
  set_matrix_shape(shard, info.shape, what);
  shard.dtype = safetensors_dtype(info.dtype, what, path);
  shard.data_start = header.data_start + info.begin;
  return shard;
}

// '<f4' / '<f2', where '|' and '=' also mean native (little-endian) byte order.
RowDtype npy_dtype(const std::string& descr, const std::string& file) {
  const bool little = !descr.empty() && std::strchr("<|=", descr[0]) != nullptr;
  if (little && descr.substr(1) == "f4") return RowDtype::F32;
  if (little && descr.substr(1) == "f2") return RowDtype::F16;
  fail_with_hint(
      file,
      "array has descr '" + descr + "'; activations must be little-endian float32 ('<f4') or float16 ('<f2')",
      "convert before saving, e.g. np.save(path, acts.astype('<f4'))");
}

ShardInfo inspect_npy(const MappedFile& file) {
  const std::string path = file.path().string();
  const NpyHeader header = with_hint([&] { return read_npy_header(file); }, kCorruptHint);
  if (header.fortran_order)
    fail_with_hint(path, "array is stored in Fortran (column-major) order; rows must be contiguous",
         "save a C-ordered array, e.g. np.save(path, np.ascontiguousarray(acts))");

  ShardInfo shard{file.path()};
  set_matrix_shape(shard, header.shape, "array");
  shard.dtype = npy_dtype(header.descr, path);
  shard.data_start = header.data_start;
  return shard;
}

struct OpenShard {
  ShardInfo info;
  MappedFile file;
};

OpenShard open_shard(const std::filesystem::path& path, const std::string& tensor_name) {
  const std::string extension = path.extension().string();
  if (extension != ".safetensors" && extension != ".npy")
    fail_with_hint(path.string(),
         (extension.empty() ? "no extension" : "unknown extension '" + extension + "'") +
             "; expected .safetensors or .npy",
         "convert the activations to safetensors or .npy, or narrow the glob to those files");
  MappedFile file = with_hint([&] { return MappedFile(path); },
                              "check that the path names a regular file readable by this user");
  ShardInfo info = extension == ".npy" ? inspect_npy(file) : inspect_safetensors(file, tensor_name);
  return {std::move(info), std::move(file)};
}

// Rows of one source dtype: where each goes in the output, and where its bytes are mapped.
struct RowGather {
  std::vector<int64_t> positions;
  std::vector<const uint8_t*> sources;

  // Copies the rows into an aligned tensor of the source dtype, then converts to float32. A row
  // whose file was cut short under its mapping gives `on_bus_error` its position.
  template <typename OnBusError>
  torch::Tensor to_float(RowDtype dtype, int64_t d_in, OnBusError on_bus_error) const {
    torch::Tensor staged = torch::empty({static_cast<int64_t>(sources.size()), d_in}, scalar_type(dtype));
    const size_t row_bytes = d_in * itemsize(dtype);
    const size_t copied = copy_rows_guarded(static_cast<uint8_t*>(staged.data_ptr()), sources, row_bytes);
    if (copied < sources.size()) on_bus_error(positions[copied]);
    return staged.to(torch::kFloat);
  }
};

}  // namespace

namespace {

FileActivationSource open_files(const std::vector<std::string>& globs, const std::string& tensor_name) {
  std::vector<ShardInfo> shards;
  std::vector<MappedFile> files;
  for (const std::filesystem::path& path : expand_globs(globs)) {
    OpenShard shard = open_shard(path, tensor_name);
    shard.info.file = files.size();
    shards.push_back(std::move(shard.info));
    files.push_back(std::move(shard.file));
  }
  return FileActivationSource(std::move(shards), std::move(files));
}

}  // namespace

FileActivationSource::FileActivationSource(const std::vector<std::string>& globs, const std::string& tensor_name)
    : FileActivationSource(open_files(globs, tensor_name)) {}

FileActivationSource::FileActivationSource(std::vector<ShardInfo> runs, std::vector<MappedFile> files)
    : files_(std::move(files)) {
  row_starts_.push_back(0);
  for (ShardInfo& run : runs) {
    if (!shards_.empty() && run.d_in != d_in_)
      fail_with_hint(run.path.string(),
           "d_in " + std::to_string(run.d_in) + " disagrees with d_in " + std::to_string(d_in_) +
               " of " + shards_.front().path.string(),
           "all shards must hold activations of the same model and layer; leave out the files that do not "
           "belong");
    d_in_ = run.d_in;
    row_starts_.push_back(row_starts_.back() + run.rows);
    shards_.push_back(std::move(run));
  }
}

std::pair<size_t, int64_t> FileActivationSource::locate(int64_t global_row) const {
  if (global_row < 0 || global_row >= num_rows())
    throw std::out_of_range("row " + std::to_string(global_row) + " is outside [0, " +
                            std::to_string(num_rows()) + ")");
  const auto next = std::upper_bound(row_starts_.begin(), row_starts_.end(), global_row);
  const size_t shard = static_cast<size_t>(next - row_starts_.begin()) - 1;
  return {shard, global_row - row_starts_[shard]};
}

const uint8_t* FileActivationSource::row_bytes(size_t shard, int64_t row) const {
  const ShardInfo& info = shards_[shard];
  return files_[info.file].data() + info.data_start + row * d_in_ * itemsize(info.dtype);
}

torch::Tensor FileActivationSource::rows(const std::vector<int64_t>& indices) const {
  std::array<RowGather, 3> gathers;  // indexed by RowDtype
  for (size_t i = 0; i < indices.size(); ++i) {
    const auto [shard, row] = locate(indices[i]);
    RowGather& gather = gathers[static_cast<size_t>(shards_[shard].dtype)];
    gather.positions.push_back(static_cast<int64_t>(i));
    gather.sources.push_back(row_bytes(shard, row));
  }

  torch::Tensor out = torch::empty({static_cast<int64_t>(indices.size()), d_in_}, torch::kFloat);
  for (size_t d = 0; d < gathers.size(); ++d) {
    const RowGather& gather = gathers[d];
    if (gather.sources.empty()) continue;
    torch::Tensor converted = gather.to_float(static_cast<RowDtype>(d), d_in_, [&](int64_t position) {
      const auto [shard, row] = locate(indices[position]);
      fail_with_hint(shards_[shard].path.string(),
           "reading row " + std::to_string(shards_[shard].first_row + row) + " raised a bus error: the file was truncated or replaced while the "
           "sweep was reading it",
           "restore the file and re-run the same command (a resume checks that the data is unchanged)");
    });
    if (gather.positions.size() == indices.size())
      out = converted;  // every row has this dtype: already in order
    else
      out.index_copy_(0, torch::tensor(gather.positions), converted);
  }
  check_finite(out, indices);
  return out;
}

void FileActivationSource::check_finite(const torch::Tensor& rows,
                                        const std::vector<int64_t>& indices) const {
  // A NaN or Inf makes the sum non-finite: one pass and no temporary as large as the batch (a
  // fresh one per batch costs its page faults, more than the pass). Finite values whose sum
  // overflows fall through to the exact check below, which then finds nothing.
  if (std::isfinite(rows.sum().item<double>())) return;
  const torch::Tensor bad_rows = torch::isfinite(rows).all(1).logical_not().nonzero();
  if (bad_rows.numel() == 0) return;
  const int64_t position = bad_rows[0][0].item<int64_t>();
  const auto [shard, row] = locate(indices[position]);
  const bool nan = rows[position].isnan().any().item<bool>();
  fail_with_hint(shards_[shard].path.string(),
       "row " + std::to_string(shards_[shard].first_row + row) + " (global row " + std::to_string(indices[position]) + ") contains " +
           (nan ? "NaN" : "Inf"),
       "the activations in this shard are corrupt (or overflowed float16); regenerate the shard or leave it "
       "out "
       "of the glob");
}

}  // namespace sweep::sharding
