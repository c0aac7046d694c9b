// SAELens caches: dataset_info.json says which Array2D columns there are and their shapes,
// state.json lists the shards; each shard is an Arrow IPC stream whose activation column is a list
// (one per sequence) of lists (one per position) of floats, so a record batch's positions lie one
// after another in its values buffer and become one run of rows. Every list's length is checked.
#include "sharding/saelens_cache.h"

#include <cerrno>
#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "sharding/arrow_stream.h"
#include "sharding/data_error.h"

namespace sweep::sharding {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kTokenColumn = "token_ids";
constexpr const char* kLayoutHint =
    "point data.path at the directory Dataset.save_to_disk wrote (it holds dataset_info.json, state.json and "
    "data-*.arrow): SAELens's CacheActivationsRunner writes it to new_cached_activations_path";
constexpr const char* kRewriteHint =
    "the shard is damaged, was not written completely or does not belong to this cache; write the cache again "
    "(or restore the file)";

json read_json(const fs::path& file) {
  if (fs::exists(file) && !fs::is_regular_file(file))  // a FIFO would block the read
    fail_with_hint(file.string(), "is not a regular file", kLayoutHint);
  std::ifstream in(file);
  if (!in) fail_with_hint(file.string(), std::string("cannot be read: ") + std::strerror(errno), kLayoutHint);
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    fail_with_hint(file.string(), std::string("is not valid JSON: ") + e.what(), kLayoutHint);
  }
}

void check_directory(const fs::path& dir) {
  if (!fs::is_directory(dir)) fail_with_hint(dir.string(), "is not a directory", kLayoutHint);
  if (fs::exists(dir / "dataset_dict.json"))
    fail_with_hint(dir.string(), "holds a DatasetDict (dataset_dict.json), not one dataset",
                   "point data.path at one split's directory, e.g. " + (dir / "train").string());
}

// An Array2D feature of dataset_info.json.
struct ArrayFeature {
  std::string name;
  int64_t context_size = 0;
  int64_t d_in = 0;
  RowDtype dtype = RowDtype::F32;
};

struct CacheInfo {
  ArrayFeature activations;
  bool has_tokens = false;
};

RowDtype feature_dtype(const std::string& dtype, const std::string& name, const fs::path& file) {
  if (dtype == "float32") return RowDtype::F32;
  if (dtype == "float16") return RowDtype::F16;
  fail_with_hint(file.string(), "feature '" + name + "' has dtype '" + dtype + "'; activations must be float32 or float16",
                 "cache the activations as float32 or float16 (Arrow, and so a datasets cache, has no bfloat16)");
}

CacheInfo read_info(const fs::path& dir, const std::string& column) {
  const fs::path file = dir / "dataset_info.json";
  const json info = read_json(file);
  if (!info.contains("features") || !info["features"].is_object())
    fail_with_hint(file.string(), "has no \"features\" object", kLayoutHint);
  std::vector<std::string> arrays;
  CacheInfo out;
  for (const auto& [name, feature] : info["features"].items()) {
    if (name == kTokenColumn) out.has_tokens = true;
    if (feature.value("_type", "") == "Array2D") arrays.push_back(name);
  }
  std::string list;
  for (const auto& name : arrays) list += (list.empty() ? "'" : ", '") + name + "'";
  if (list.empty()) list = "none";
  std::string chosen = column;
  if (chosen.empty() && arrays.size() != 1)
    fail_with_hint(file.string(), "has " + std::to_string(arrays.size()) + " Array2D features (" + list + "), so which "
                   "holds the activations is not clear", "set data.hook_name to the column to train on");
  if (chosen.empty()) chosen = arrays.front();
  if (std::find(arrays.begin(), arrays.end(), chosen) == arrays.end())
    fail_with_hint(file.string(), "has no Array2D feature named '" + chosen + "'; its Array2D features: " + list,
                   "set data.hook_name to one of them (SAELens names the column after the hook)");
  const json& feature = info["features"][chosen];
  const json shape = feature.value("shape", json());
  if (!shape.is_array() || shape.size() != 2 || !shape[0].is_number_integer() || !shape[1].is_number_integer() ||
      shape[0].get<int64_t>() < 1 || shape[1].get<int64_t>() < 1)
    fail_with_hint(file.string(), "feature '" + chosen + "' has shape " + shape.dump() + "; expected [context_size, d_in]",
                   kLayoutHint);
  out.activations = {chosen, shape[0].get<int64_t>(), shape[1].get<int64_t>(),
                     feature_dtype(feature.value("dtype", ""), chosen, file)};
  return out;
}

// One list-like level (List, LargeList or FixedSizeList) of one record batch.
struct ListLevel {
  const ArrowField* field;
  ArrowNode node;
  const ArrowBuffer* buffers;  // the level's own buffers
};

int own_buffer_count(const ArrowField& f) { return f.type == ArrowType::FixedSizeList ? 1 : 2; }

bool is_list(const ArrowField& f) {
  return (f.type == ArrowType::List || f.type == ArrowType::LargeList || f.type == ArrowType::FixedSizeList) &&
         f.children.size() == 1;
}

// The index of the first child element of lists [first, first + count) of `level`, after checking
// that none is null and each holds `size` elements. Throws DataError saying what is wrong.
int64_t child_start(const MappedFile& file, const ListLevel& level, int64_t first, int64_t count, int64_t size,
                    const std::string& what) {
  if (level.node.null_count != 0)
    throw DataError(what + " has " + std::to_string(level.node.null_count) + " null entries");
  if (level.node.length < first + count)
    throw DataError(what + " has " + std::to_string(level.node.length) + " entries where " +
                    std::to_string(first + count) + " are needed");
  if (level.field->type == ArrowType::FixedSizeList) {
    if (level.field->list_size != size)
      throw DataError(what + " holds lists of " + std::to_string(level.field->list_size) + " where " +
                      std::to_string(size) + " are expected");
    return first * size;
  }
  const int width = level.field->type == ArrowType::LargeList ? 8 : 4;
  const ArrowBuffer& offsets = level.buffers[1];
  if (offsets.length < static_cast<uint64_t>(first + count + 1) * width)
    throw DataError(what + ": the offsets buffer is " + std::to_string(offsets.length) + " bytes, too short for " +
                    std::to_string(first + count) + " lists");
  auto offset = [&](int64_t i) {
    int64_t value = 0;
    std::memcpy(&value, file.data() + offsets.start + i * width, width);  // little-endian: low bytes first
    return width == 4 ? static_cast<int64_t>(static_cast<int32_t>(value)) : value;
  };
  int64_t previous = offset(first);
  for (int64_t i = first + 1; i <= first + count; ++i) {
    const int64_t next = offset(i);
    if (next - previous != size)
      throw DataError(what + ": list " + std::to_string(i - 1) + " holds " + std::to_string(next - previous) +
                      " entries where " + std::to_string(size) + " are expected");
    previous = next;
  }
  return offset(first);
}

// Checks that a primitive leaf array holds values [start, start + count) without nulls.
void check_leaf(const ArrowNode& node, const ArrowBuffer& values, int64_t start, int64_t count, int bytes,
                const std::string& what) {
  if (node.null_count != 0) throw DataError(what + " has " + std::to_string(node.null_count) + " null values");
  if (node.length < start + count || values.length < static_cast<uint64_t>(start + count) * bytes)
    throw DataError(what + " holds " + std::to_string(node.length) + " values in " + std::to_string(values.length) +
                    " bytes where " + std::to_string(start + count) + " are needed");
}

// A column that is a list-like of list-likes of `leaf` values; its levels in one batch.
struct NestedColumn {
  std::vector<ListLevel> levels;
  ArrowNode leaf_node;
  ArrowBuffer leaf_values;
};

NestedColumn column_in_batch(const ArrowField& field, const ColumnLayout& layout, const ArrowBatch& batch) {
  NestedColumn out;
  size_t node = layout.first_node, buffer = layout.first_buffer;
  const ArrowField* f = &field;
  while (is_list(*f)) {
    out.levels.push_back({f, batch.nodes[node++], &batch.buffers[buffer]});
    buffer += own_buffer_count(*f);
    f = &f->children.front();
  }
  out.leaf_node = batch.nodes[node];
  out.leaf_values = batch.buffers[buffer + 1];
  return out;
}

size_t find_column(const ArrowStream& stream, const std::string& name) {
  for (size_t i = 0; i < stream.fields.size(); ++i)
    if (stream.fields[i].name == name) return i;
  return stream.fields.size();
}

std::string column_names(const ArrowStream& stream) {
  std::string out;
  for (const auto& f : stream.fields) out += (out.empty() ? "'" : ", '") + f.name + "' (" + f.type_name() + ")";
  return out.empty() ? "none" : out;
}

const ArrowField& leaf_of(const ArrowField& f) { return is_list(f) ? leaf_of(f.children.front()) : f; }
int depth_of(const ArrowField& f) { return is_list(f) ? 1 + depth_of(f.children.front()) : 0; }

void check_activation_type(const ArrowField& f, const ArrayFeature& feature, const fs::path& path) {
  const ArrowField& leaf = leaf_of(f);
  const auto want = feature.dtype == RowDtype::F32 ? ArrowPrecision::Single : ArrowPrecision::Half;
  if (depth_of(f) != 2 || leaf.type != ArrowType::FloatingPoint || leaf.precision != want)
    fail_with_hint(path.string(),
                   "column '" + f.name + "' is " + f.type_name() + " where dataset_info.json says Array2D(" +
                       std::to_string(feature.context_size) + ", " + std::to_string(feature.d_in) + ") of " +
                       (feature.dtype == RowDtype::F32 ? "float32" : "float16") + " (a list of lists of them)",
                   kRewriteHint);
}

int token_bytes(const ArrowField& f, const fs::path& path) {
  const ArrowField& leaf = leaf_of(f);
  if (depth_of(f) != 1 || leaf.type != ArrowType::Int || !leaf.is_signed || (leaf.bit_width != 32 && leaf.bit_width != 64))
    fail_with_hint(path.string(), "column 'token_ids' is " + f.type_name() + " where a list of int32 is expected",
                   kRewriteHint);
  return leaf.bit_width / 8;
}

// Validates one shard and appends its runs (and token runs) to `cache`.
void add_shard(SaelensCache& cache, const fs::path& path, bool has_tokens, const ArrayFeature& feature) {
  MappedFile file = [&] {
    try {
      return MappedFile(path);
    } catch (const DataError& e) {
      throw DataError(std::string(e.what()) + " (a shard that state.json lists)\nHINT: restore the shard, or write the "
                      "cache again");
    }
  }();
  const ArrowStream stream = [&] {
    try {
      return read_arrow_stream(file);
    } catch (const DataError& e) {
      throw DataError(std::string(e.what()) + "\nHINT: " + kRewriteHint);
    }
  }();
  const size_t column = find_column(stream, feature.name), tokens = find_column(stream, kTokenColumn);
  if (column == stream.fields.size())
    fail_with_hint(path.string(), "has no column '" + feature.name + "'; its columns: " + column_names(stream), kRewriteHint);
  check_activation_type(stream.fields[column], feature, path);
  const bool read_tokens = has_tokens && tokens < stream.fields.size();
  if (has_tokens && !read_tokens)
    fail_with_hint(path.string(), "has no column 'token_ids', which dataset_info.json lists", kRewriteHint);
  const int bytes = read_tokens ? token_bytes(stream.fields[tokens], path) : 0;
  const int itemsize = feature.dtype == RowDtype::F32 ? 4 : 2;
  const int64_t ctx = feature.context_size;

  const size_t file_index = cache.files.size();
  int64_t rows_in_file = 0;
  for (size_t b = 0; b < stream.batches.size(); ++b) {
    const ArrowBatch& batch = stream.batches[b];
    if (batch.length == 0) continue;
    const std::string where = "record batch " + std::to_string(b) + ", column ";
    try {
      const NestedColumn acts = column_in_batch(stream.fields[column], column_layout(stream.fields, column), batch);
      const std::string what = where + "'" + feature.name + "'";
      const int64_t position = child_start(file, acts.levels[0], 0, batch.length, ctx, what);
      const int64_t value = child_start(file, acts.levels[1], position, batch.length * ctx, feature.d_in, what + ", positions");
      check_leaf(acts.leaf_node, acts.leaf_values, value, batch.length * ctx * feature.d_in, itemsize, what + ", values");
      cache.runs.push_back({path, feature.dtype, batch.length * ctx, feature.d_in,
                            acts.leaf_values.start + static_cast<uint64_t>(value) * itemsize, file_index, rows_in_file});
      if (read_tokens) {
        const NestedColumn ids = column_in_batch(stream.fields[tokens], column_layout(stream.fields, tokens), batch);
        const int64_t first = child_start(file, ids.levels[0], 0, batch.length, ctx, where + "'token_ids'");
        check_leaf(ids.leaf_node, ids.leaf_values, first, batch.length * ctx, bytes, where + "'token_ids', values");
        cache.tokens.push_back({file_index, ids.leaf_values.start + static_cast<uint64_t>(first) * bytes,
                                batch.length * ctx, bytes});
      }
    } catch (const DataError& e) {
      fail_with_hint(path.string(), e.what(), kRewriteHint);
    }
    rows_in_file += batch.length * ctx;
  }
  cache.files.push_back(std::move(file));
}

}  // namespace

std::vector<fs::path> saelens_cache_files(const fs::path& dir) {
  check_directory(dir);
  const fs::path state = dir / "state.json";
  const json j = read_json(state);
  if (!j.contains("_data_files") || !j["_data_files"].is_array() || j["_data_files"].empty())
    fail_with_hint(state.string(), "has no \"_data_files\" list of shards", kLayoutHint);
  std::vector<fs::path> files{dir / "dataset_info.json", state};
  for (const auto& entry : j["_data_files"]) {
    const std::string name = entry.is_object() ? entry.value("filename", "") : "";
    if (name.empty() || name.find('/') != std::string::npos || name == "..")
      fail_with_hint(state.string(), "lists a shard " + entry.dump() + " that is not a file name in the directory",
                     kLayoutHint);
    files.push_back(dir / name);
  }
  return files;
}

SaelensCache open_saelens_cache(const fs::path& dir, const std::string& column) {
  const std::vector<fs::path> files = saelens_cache_files(dir);
  const CacheInfo info = read_info(dir, column);
  SaelensCache cache;
  cache.column = info.activations.name;
  cache.context_size = info.activations.context_size;
  cache.d_in = info.activations.d_in;
  for (size_t i = 2; i < files.size(); ++i) add_shard(cache, files[i], info.has_tokens, info.activations);
  if (cache.runs.empty())
    fail_with_hint(dir.string(), "the cache's shards hold no sequences", "write the cache again with training_tokens > 0");
  return cache;
}

torch::Tensor saelens_token_ids(const SaelensCache& cache, const fs::path& dir) {
  if (cache.tokens.empty())
    fail_with_hint(dir.string(), "the cache has no token_ids column",
                   "write the cache with a SAELens version that stores token ids (6.x), or give --tokens");
  int64_t total = 0;
  for (const auto& run : cache.tokens) total += run.count;
  torch::Tensor out = torch::empty({total}, torch::kLong);
  int64_t* dst = out.data_ptr<int64_t>();
  for (const auto& run : cache.tokens) {
    const uint8_t* src = cache.files[run.file].data() + run.start;
    for (int64_t i = 0; i < run.count; ++i) {
      if (run.bytes == 8) {
        std::memcpy(dst++, src + 8 * i, 8);
      } else {
        int32_t id = 0;
        std::memcpy(&id, src + 4 * i, 4);
        *dst++ = id;
      }
    }
  }
  return out;
}

}  // namespace sweep::sharding
