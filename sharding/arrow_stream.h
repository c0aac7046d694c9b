// Arrow IPC streams (the format `datasets` writes its .arrow files in): the schema message and the
// record batches' field nodes and buffers, read from a mapped file without copying any data. Only
// what SAELens activation caches need: uncompressed bodies, no dictionaries, little-endian, and the
// buffer layouts of the primitive, binary, list and struct types.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "sharding/mapped_file.h"

namespace sweep::sharding {

// Logical types, numbered as the Type union of the format's Schema.fbs.
enum class ArrowType : uint8_t {
  None = 0, Null, Int, FloatingPoint, Binary, Utf8, Bool, Decimal, Date, Time, Timestamp, Interval,
  List, Struct, Union, FixedSizeBinary, FixedSizeList, Map, Duration, LargeBinary, LargeUtf8,
  LargeList, RunEndEncoded, BinaryView, Utf8View, ListView, LargeListView
};

// FloatingPoint precisions, as the format numbers them.
enum class ArrowPrecision : int16_t { Half = 0, Single = 1, Double = 2 };

struct ArrowField {
  std::string name;
  ArrowType type = ArrowType::None;
  int32_t bit_width = 0;          // Int
  bool is_signed = false;         // Int
  ArrowPrecision precision = ArrowPrecision::Single;  // FloatingPoint
  int32_t list_size = 0;          // FixedSizeList
  bool dictionary_encoded = false;
  std::vector<ArrowField> children;
  std::map<std::string, std::string> metadata;

  // "list<list<float32>>", "fixed_size_list<int32>[128]", ...
  std::string type_name() const;
};

struct ArrowNode {
  int64_t length = 0;
  int64_t null_count = 0;
};

// A buffer as absolute byte offsets into the file.
struct ArrowBuffer {
  uint64_t start = 0;
  uint64_t length = 0;
};

// One record batch: its rows, then every array's node and buffers in the schema's depth-first order.
struct ArrowBatch {
  int64_t length = 0;
  std::vector<ArrowNode> nodes;
  std::vector<ArrowBuffer> buffers;
};

struct ArrowStream {
  std::vector<ArrowField> fields;
  std::map<std::string, std::string> metadata;
  std::vector<ArrowBatch> batches;
};

// Reads every message of the stream. Throws DataError("<file>: <what>") when the stream does not
// start with a schema, ends before its end-of-stream marker (truncated), holds a message that runs
// past the end of the file, has compressed bodies, dictionary batches, big-endian data, a type whose
// buffer layout is not read here, node or buffer counts that disagree with the schema, or buffers
// outside their message's body.
ArrowStream read_arrow_stream(const MappedFile& file);

// Where a top-level column's first node and first buffer are in every batch.
struct ColumnLayout {
  size_t first_node = 0;
  size_t first_buffer = 0;
};
ColumnLayout column_layout(const std::vector<ArrowField>& fields, size_t column);

}  // namespace sweep::sharding
