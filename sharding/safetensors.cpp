// Reading, validating and writing safetensors files (see safetensors.h for the layout).
// Headers are parsed from a read-only mapping; writes go to a temporary file that is renamed.
#include "sharding/safetensors.h"

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "sharding/data_error.h"

namespace sweep::sharding {
namespace {

constexpr uint64_t kLengthBytes = 8;
constexpr const char* kMetadataKey = "__metadata__";

struct DtypeSpec {
  const char* name;
  torch::ScalarType type;
  uint64_t itemsize;
};

constexpr DtypeSpec kDtypes[] = {
    {"F64", torch::kDouble, 8},    {"F32", torch::kFloat, 4}, {"F16", torch::kHalf, 2},
    {"BF16", torch::kBFloat16, 2}, {"I64", torch::kLong, 8},  {"I32", torch::kInt, 4},
    {"I16", torch::kShort, 2},     {"I8", torch::kChar, 1},   {"U8", torch::kByte, 1},
    {"BOOL", torch::kBool, 1},
};

const DtypeSpec* find_dtype(const std::string& name) {
  for (const DtypeSpec& spec : kDtypes)
    if (name == spec.name) return &spec;
  return nullptr;
}

const DtypeSpec* find_dtype(torch::ScalarType type) {
  for (const DtypeSpec& spec : kDtypes)
    if (type == spec.type) return &spec;
  return nullptr;
}

DataError header_error(const std::filesystem::path& file, const std::string& what) {
  return DataError(file.string() + ": " + what);
}

uint64_t read_le64(const uint8_t* bytes) {
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | bytes[i];
  return value;
}

// A JSON value that must be a non-negative integer fitting in int64.
bool is_count(const nlohmann::json& value) {
  return value.is_number_unsigned() &&
         value.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
}

// numel(shape) * itemsize, or false when it overflows 64 bits.
bool byte_size(const std::vector<int64_t>& shape, uint64_t itemsize, uint64_t* bytes) {
  *bytes = itemsize;
  for (int64_t dim : shape)
    if (__builtin_mul_overflow(*bytes, static_cast<uint64_t>(dim), bytes)) return false;
  return true;
}

std::vector<int64_t> parse_shape(const nlohmann::json& value, const std::string& where,
                                 const std::filesystem::path& file) {
  if (!value.is_array()) throw header_error(file, where + ": shape is not an array");
  std::vector<int64_t> shape;
  for (const nlohmann::json& dim : value) {
    if (!is_count(dim))
      throw header_error(file, where + ": shape " + value.dump() + " is not a list of non-negative integers");
    shape.push_back(dim.get<int64_t>());
  }
  return shape;
}

SafetensorsTensorInfo parse_tensor_info(const std::string& name, const nlohmann::json& entry,
                                        uint64_t buffer_size, const std::filesystem::path& file) {
  const std::string where = "tensor '" + name + "'";
  if (!entry.is_object()) throw header_error(file, where + ": entry is not a JSON object");
  for (const char* key : {"dtype", "shape", "data_offsets"})
    if (!entry.contains(key)) throw header_error(file, where + ": missing \"" + key + "\"");

  SafetensorsTensorInfo info;
  const nlohmann::json& dtype = entry["dtype"];
  info.dtype = dtype.is_string() ? dtype.get<std::string>() : dtype.dump();
  const DtypeSpec* spec = find_dtype(info.dtype);
  if (spec == nullptr) throw header_error(file, where + ": unsupported dtype '" + info.dtype + "'");
  info.shape = parse_shape(entry["shape"], where, file);

  const nlohmann::json& offsets = entry["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2 || !is_count(offsets[0]) || !is_count(offsets[1]))
    throw header_error(
        file, where + ": data_offsets " + offsets.dump() + " is not a pair of non-negative integers");
  info.begin = offsets[0].get<uint64_t>();
  info.end = offsets[1].get<uint64_t>();

  uint64_t expected = 0;
  if (!byte_size(info.shape, spec->itemsize, &expected))
    throw header_error(file, where + ": shape " + shape_string(info.shape) + " is too large");
  if (info.end < info.begin || info.end - info.begin != expected)
    throw header_error(file, where + ": data_offsets " + offsets.dump() + " span " +
                                 std::to_string(info.end - info.begin) + " bytes but " + info.dtype +
                                 " shape " + shape_string(info.shape) + " needs " + std::to_string(expected));
  if (info.end > buffer_size)
    throw header_error(file, where + ": data_offsets " + offsets.dump() +
                                 " run past the end of the file (data buffer is " +
                                 std::to_string(buffer_size) + " bytes)");
  return info;
}

std::map<std::string, std::string> parse_metadata(const nlohmann::json& value,
                                                  const std::filesystem::path& file) {
  if (!value.is_object()) throw header_error(file, "__metadata__ is not a JSON object");
  std::map<std::string, std::string> metadata;
  for (const auto& [key, item] : value.items()) {
    if (!item.is_string()) throw header_error(file, "__metadata__ value for '" + key + "' is not a string");
    metadata[key] = item.get<std::string>();
  }
  return metadata;
}

void write_le64(std::ostream& out, uint64_t value) {
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>((value >> (8 * i)) & 0xff));
}

// The header JSON for `tensors` (already on CPU and contiguous), in their order.
std::string header_json(const std::filesystem::path& file,
                        const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                        const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header[kMetadataKey] = metadata;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    const DtypeSpec* spec = find_dtype(tensor.scalar_type());
    if (spec == nullptr)
      throw std::invalid_argument(file.string() + ": tensor '" + name + "' has dtype " +
                                  std::string(c10::toString(tensor.scalar_type())) +
                                  ", which safetensors cannot hold here");
    if (name == kMetadataKey || header.contains(name))
      throw std::invalid_argument(file.string() + ": tensor name '" + name + "' is reserved or repeated");
    const uint64_t end = offset + tensor.nbytes();
    header[name] = {{"dtype", spec->name},
                    {"shape", tensor.sizes().vec()},
                    {"data_offsets", nlohmann::ordered_json::array({offset, end})}};
    offset = end;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  return text;
}

}  // namespace

SafetensorsHeader read_safetensors_header(const std::filesystem::path& file) {
  return read_safetensors_header(MappedFile(file));
}

SafetensorsHeader read_safetensors_header(const MappedFile& file) {
  const std::filesystem::path& path = file.path();
  if (file.size() < kLengthBytes)
    throw header_error(path,
                       "file is " + std::to_string(file.size()) +
                           " bytes, too short for the 8-byte safetensors header length (truncated header)");
  const uint64_t length = read_le64(file.data());
  if (length > file.size() - kLengthBytes)
    throw header_error(path, "header length " + std::to_string(length) + " exceeds the file size (" +
                                 std::to_string(file.size()) + " bytes)");

  const char* text = reinterpret_cast<const char*>(file.data()) + kLengthBytes;
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(text, text + length);
  } catch (const nlohmann::json::parse_error& e) {
    throw header_error(path, std::string("header is not valid JSON: ") + e.what());
  }
  if (!json.is_object()) throw header_error(path, "header JSON is not an object");

  SafetensorsHeader header;
  header.data_start = kLengthBytes + length;
  const uint64_t buffer_size = file.size() - header.data_start;
  for (const auto& [name, entry] : json.items()) {
    if (name == kMetadataKey)
      header.metadata = parse_metadata(entry, path);
    else
      header.tensors[name] = parse_tensor_info(name, entry, buffer_size, path);
  }
  // The format requires the data offsets to tile the buffer: no two tensors share a byte.
  std::vector<std::pair<std::pair<uint64_t, uint64_t>, std::string>> ranges;
  for (const auto& [name, info] : header.tensors) {
    if (info.end > info.begin) ranges.push_back({{info.begin, info.end}, name});
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].first.first < ranges[i - 1].first.second) {
      throw header_error(path, "tensors \"" + ranges[i - 1].second + "\" and \"" + ranges[i].second +
                                   "\" overlap (data_offsets [" + std::to_string(ranges[i - 1].first.first) + ", " +
                                   std::to_string(ranges[i - 1].first.second) + ") and [" +
                                   std::to_string(ranges[i].first.first) + ", " + std::to_string(ranges[i].first.second) +
                                   ")): the file is damaged or was not written by a safetensors writer");
    }
  }
  return header;
}

std::map<std::string, torch::Tensor> read_safetensors(const std::filesystem::path& file) {
  const MappedFile mapped(file);
  const SafetensorsHeader header = read_safetensors_header(mapped);
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& [name, info] : header.tensors) {
    torch::Tensor tensor = torch::empty(info.shape, torch::dtype(find_dtype(info.dtype)->type));
    if (info.end > info.begin)
      std::memcpy(tensor.data_ptr(), mapped.data() + header.data_start + info.begin, info.end - info.begin);
    tensors.emplace(name, std::move(tensor));
  }
  return tensors;
}

void write_safetensors(const std::filesystem::path& file,
                       const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<std::pair<std::string, torch::Tensor>> cpu;
  for (const auto& [name, tensor] : tensors) cpu.emplace_back(name, tensor.to(torch::kCPU).contiguous());
  const std::string header = header_json(file, cpu, metadata);

  std::filesystem::path tmp = file;
  tmp += ".tmp";
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  if (!out)
    throw std::runtime_error(file.string() + ": cannot open " + tmp.string() +
                             " for writing: " + std::strerror(errno));
  write_le64(out, header.size());
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  for (const auto& entry : cpu)
    out.write(static_cast<const char*>(entry.second.data_ptr()),
              static_cast<std::streamsize>(entry.second.nbytes()));
  out.close();

  std::error_code ec;
  if (!out) {
    const std::string reason = std::strerror(errno);
    std::filesystem::remove(tmp, ec);
    throw std::runtime_error(file.string() + ": cannot write " + tmp.string() + ": " + reason);
  }
  std::filesystem::rename(tmp, file, ec);
  if (ec)
    throw std::runtime_error(file.string() + ": cannot rename " + tmp.string() +
                             " into place: " + ec.message());
}

}  // namespace sweep::sharding
