// NumPy .npy header parsing (a small parser for the Python dict literal it holds) and writing.
// Layout: "\x93NUMPY", major, minor, header length (2 bytes in v1, 4 in v2/v3), dict, data.
#include "sharding/npy.h"

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string_view>

#include "sharding/data_error.h"

namespace sweep::sharding {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicBytes = 6;
constexpr size_t kAlignment = 64;  // numpy aligns the data start to 64 bytes

DataError npy_error(const std::filesystem::path& file, const std::string& what) {
  return DataError(file.string() + ": " + what);
}

uint64_t read_le(const uint8_t* bytes, int count) {
  uint64_t value = 0;
  for (int i = count - 1; i >= 0; --i) value = (value << 8) | bytes[i];
  return value;
}

void write_le(std::ostream& out, uint64_t value, int count) {
  for (int i = 0; i < count; ++i) out.put(static_cast<char>((value >> (8 * i)) & 0xff));
}

// Parses the header dict, e.g. {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
class DictParser {
 public:
  DictParser(std::string_view text, const std::filesystem::path& file) : text_(text), file_(file) {}

  NpyHeader parse() {
    NpyHeader header;
    std::set<std::string> seen;
    expect('{');
    while (!consume('}')) {
      const std::string key = parse_string();
      expect(':');
      if (key == "descr")
        header.descr = parse_string();
      else if (key == "fortran_order")
        header.fortran_order = parse_bool();
      else if (key == "shape")
        header.shape = parse_shape();
      else
        throw error("unexpected key '" + key + "'");
      if (!seen.insert(key).second) throw error("key '" + key + "' appears twice");
      if (!consume(',')) {
        expect('}');
        break;
      }
    }
    if (seen.size() != 3) throw error("needs the keys 'descr', 'fortran_order' and 'shape'");
    skip_space();
    if (pos_ != text_.size()) throw error("unexpected text after the closing '}'");
    return header;
  }

 private:
  DataError error(const std::string& what) const {
    return npy_error(file_, "bad .npy header dict (" + what + "): " + std::string(text_));
  }

  void skip_space() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }

  bool consume(char c) {
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  void expect(char c) {
    if (!consume(c)) throw error(std::string("expected '") + c + "'");
  }

  std::string parse_string() {
    skip_space();
    if (pos_ >= text_.size() || (text_[pos_] != '\'' && text_[pos_] != '"')) throw error("expected a string");
    const size_t close = text_.find(text_[pos_], pos_ + 1);
    if (close == std::string_view::npos) throw error("unterminated string");
    std::string value(text_.substr(pos_ + 1, close - pos_ - 1));
    pos_ = close + 1;
    return value;
  }

  bool consume_word(std::string_view word) {
    skip_space();
    if (text_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  bool parse_bool() {
    if (consume_word("True")) return true;
    if (consume_word("False")) return false;
    throw error("expected True or False");
  }

  int64_t parse_int() {
    skip_space();
    const size_t start = pos_;
    int64_t value = 0;
    for (; pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_])); ++pos_) {
      if (__builtin_mul_overflow(value, 10, &value) ||
          __builtin_add_overflow(value, text_[pos_] - '0', &value))
        throw error("dimension too large");
    }
    if (pos_ == start) throw error("expected a non-negative integer");
    consume('L');  // Python 2 long suffix
    return value;
  }

  std::vector<int64_t> parse_shape() {
    std::vector<int64_t> shape;
    expect('(');
    while (!consume(')')) {
      shape.push_back(parse_int());
      if (!consume(',')) {
        expect(')');
        break;
      }
    }
    return shape;
  }

  std::string_view text_;
  const std::filesystem::path& file_;
  size_t pos_ = 0;
};

// Bytes per element of a descr like '<f4', '|u1' or 'b1': optional byte order, kind, byte count.
uint64_t itemsize(const std::string& descr, const std::filesystem::path& file) {
  const size_t kind = (!descr.empty() && std::strchr("<>|=", descr[0]) != nullptr) ? 1 : 0;
  const std::string count = descr.size() > kind + 1 ? descr.substr(kind + 1) : "";
  const bool numeric_kind = descr.size() > kind && std::strchr("biufc", descr[kind]) != nullptr;
  if (!numeric_kind || count.empty() || count.size() > 2 ||
      count.find_first_not_of("0123456789") != std::string::npos)
    throw npy_error(file, "unsupported descr '" + descr + "' (only plain numeric dtypes are supported)");
  return std::stoull(count);
}

void check_data_size(const NpyHeader& header, uint64_t file_size, const std::filesystem::path& file) {
  uint64_t bytes = itemsize(header.descr, file);
  for (int64_t dim : header.shape)
    if (__builtin_mul_overflow(bytes, static_cast<uint64_t>(dim), &bytes))
      throw npy_error(file, "shape " + shape_string(header.shape) + " is too large");
  if (file_size - header.data_start != bytes)
    throw npy_error(file, "file size " + std::to_string(file_size) + " bytes does not match the " +
                              std::to_string(header.data_start + bytes) + " bytes implied by shape " +
                              shape_string(header.shape) + " and descr '" + header.descr +
                              "' (truncated or trailing data)");
}

std::string npy_descr(torch::ScalarType type, const std::filesystem::path& file) {
  switch (type) {
    case torch::kFloat:
      return "<f4";
    case torch::kHalf:
      return "<f2";
    case torch::kLong:
      return "<i8";
    default:
      throw std::invalid_argument(file.string() + ": write_npy supports float32, float16 and int64, not " +
                                  std::string(c10::toString(type)));
  }
}

// "(3, 4)", "(3,)" or "()".
std::string shape_tuple(const std::vector<int64_t>& shape) {
  std::string tuple = "(";
  for (size_t i = 0; i < shape.size(); ++i) tuple += (i > 0 ? ", " : "") + std::to_string(shape[i]);
  return tuple + (shape.size() == 1 ? ",)" : ")");
}

// The header dict, padded with spaces and ended with '\n' so the data starts 64-byte aligned.
std::string header_dict(const std::string& descr, const std::vector<int64_t>& shape, size_t prefix_bytes) {
  std::string dict =
      "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape_tuple(shape) + ", }";
  const size_t unpadded = prefix_bytes + dict.size() + 1;
  dict.append((kAlignment - unpadded % kAlignment) % kAlignment, ' ');
  return dict + "\n";
}

}  // namespace

NpyHeader read_npy_header(const std::filesystem::path& file) { return read_npy_header(MappedFile(file)); }

NpyHeader read_npy_header(const MappedFile& file) {
  const std::filesystem::path& path = file.path();
  const uint8_t* data = file.data();
  if (file.size() < kMagicBytes + 2 || std::memcmp(data, kMagic, kMagicBytes) != 0)
    throw npy_error(path, "not a .npy file (bad magic, expected \\x93NUMPY)");
  const int major = data[kMagicBytes], minor = data[kMagicBytes + 1];
  if (major < 1 || major > 3 || minor != 0)
    throw npy_error(path, "unsupported .npy version " + std::to_string(major) + "." + std::to_string(minor));

  const int length_bytes = major == 1 ? 2 : 4;
  const uint64_t prefix = kMagicBytes + 2 + length_bytes;
  if (file.size() < prefix)
    throw npy_error(path, "file too short for the .npy header length (truncated header)");
  const uint64_t length = read_le(data + kMagicBytes + 2, length_bytes);
  if (length > file.size() - prefix)
    throw npy_error(path, "header length " + std::to_string(length) + " exceeds the file size (" +
                              std::to_string(file.size()) + " bytes)");

  const std::string_view text(reinterpret_cast<const char*>(data) + prefix, length);
  NpyHeader header = DictParser(text, path).parse();
  header.data_start = prefix + length;
  check_data_size(header, file.size(), path);
  return header;
}

void write_npy(const std::filesystem::path& file, const torch::Tensor& tensor) {
  const torch::Tensor data = tensor.to(torch::kCPU).contiguous();
  const std::string descr = npy_descr(data.scalar_type(), file);
  std::string dict = header_dict(descr, data.sizes().vec(), kMagicBytes + 2 + 2);
  const int major = dict.size() <= 0xffff ? 1 : 2;
  if (major == 2) dict = header_dict(descr, data.sizes().vec(), kMagicBytes + 2 + 4);

  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  if (!out) throw std::runtime_error(file.string() + ": cannot open for writing: " + std::strerror(errno));
  out.write(kMagic, kMagicBytes);
  out.put(static_cast<char>(major));
  out.put(0);
  write_le(out, dict.size(), major == 1 ? 2 : 4);
  out << dict;
  out.write(static_cast<const char*>(data.data_ptr()), static_cast<std::streamsize>(data.nbytes()));
  out.close();
  if (!out) throw std::runtime_error(file.string() + ": cannot write: " + std::strerror(errno));
}

torch::Tensor read_int_vector_npy(const std::filesystem::path& file, const std::string& what) {
  MappedFile mapped(file);
  auto header = read_npy_header(mapped);
  const std::map<std::string, torch::ScalarType> types = {{"<i2", torch::kShort}, {"<i4", torch::kInt}, {"<i8", torch::kLong}};
  auto type = types.find(header.descr);
  if (header.shape.size() != 1 || header.fortran_order || type == types.end()) {
    throw npy_error(file, "must be a 1-D int16, int32 or int64 array of " + what + ", got dtype '" + header.descr + "' and shape " +
                              shape_string(header.shape));
  }
  auto out = torch::empty({header.shape[0]}, type->second);
  std::memcpy(out.data_ptr(), mapped.data() + header.data_start, static_cast<size_t>(out.nbytes()));
  return out.to(torch::kLong);
}

}  // namespace sweep::sharding
