// Reading an Arrow IPC stream: a sequence of encapsulated messages (0xFFFFFFFF, the metadata's
// length, a FlatBuffers Message, padding to 8 bytes, then the body), ended by 0xFFFFFFFF 0. The
// field numbers below are those of the format's Message.fbs and Schema.fbs.
#include "sharding/arrow_stream.h"

#include <cstring>

#include "sharding/data_error.h"
#include "sharding/flatbuffer.h"

namespace sweep::sharding {
namespace {

constexpr uint32_t kContinuation = 0xFFFFFFFF;

// Message.fbs: the MessageHeader union's members.
enum class MessageKind : uint8_t { Schema = 1, DictionaryBatch = 2, RecordBatch = 3, Tensor = 4, SparseTensor = 5 };
// The oldest metadata version whose layout this reader follows (V4, Arrow 0.8).
constexpr int16_t kMetadataV4 = 3;

// Field numbers of the tables read here.
namespace message { enum { version, header_type, header, body_length }; }
namespace schema { enum { endianness, fields, custom_metadata }; }
namespace field { enum { name, nullable, type_type, type, dictionary, children, custom_metadata }; }
namespace record_batch { enum { length, nodes, buffers, compression }; }
namespace key_value { enum { key, value }; }

// Buffers of one array of this type, children aside; -1 for a layout not read here.
int own_buffers(ArrowType type) {
  switch (type) {
    case ArrowType::Int: case ArrowType::FloatingPoint: case ArrowType::Bool: case ArrowType::Decimal:
    case ArrowType::Date: case ArrowType::Time: case ArrowType::Timestamp: case ArrowType::Interval:
    case ArrowType::Duration: case ArrowType::FixedSizeBinary:
      return 2;  // validity, values
    case ArrowType::Binary: case ArrowType::Utf8: case ArrowType::LargeBinary: case ArrowType::LargeUtf8:
      return 3;  // validity, offsets, bytes
    case ArrowType::List: case ArrowType::LargeList: case ArrowType::Map:
      return 2;  // validity, offsets
    case ArrowType::FixedSizeList: case ArrowType::Struct:
      return 1;  // validity
    case ArrowType::Null:
      return 0;
    default:
      return -1;
  }
}

// Nodes and buffers of a field and its children, depth first.
void count_arrays(const ArrowField& f, size_t* nodes, size_t* buffers) {
  *nodes += 1;
  *buffers += static_cast<size_t>(own_buffers(f.type));
  for (const auto& child : f.children) count_arrays(child, nodes, buffers);
}

std::map<std::string, std::string> read_metadata(const FlatTable& table, int field_number) {
  std::map<std::string, std::string> out;
  for (size_t i = 0; i < table.vector_length(field_number); ++i) {
    const FlatTable pair = table.table_at(field_number, i);
    out[pair.string(key_value::key)] = pair.string(key_value::value);
  }
  return out;
}

ArrowField read_field(const FlatTable& table) {
  ArrowField f;
  f.name = table.string(field::name);
  f.type = static_cast<ArrowType>(table.scalar<uint8_t>(field::type_type, 0));
  f.dictionary_encoded = table.has(field::dictionary);
  f.metadata = read_metadata(table, field::custom_metadata);
  if (table.has(field::type)) {
    const FlatTable type = table.table(field::type);
    if (f.type == ArrowType::Int) {
      f.bit_width = type.scalar<int32_t>(0, 0);
      f.is_signed = type.scalar<bool>(1, false);
    } else if (f.type == ArrowType::FloatingPoint) {
      f.precision = static_cast<ArrowPrecision>(type.scalar<int16_t>(0, 0));
    } else if (f.type == ArrowType::FixedSizeList) {
      f.list_size = type.scalar<int32_t>(0, 0);
    }
  }
  for (size_t i = 0; i < table.vector_length(field::children); ++i)
    f.children.push_back(read_field(table.table_at(field::children, i)));
  return f;
}

// Throws for a field whose arrays this reader could not walk past.
void check_layout_known(const ArrowField& f, const std::string& path) {
  const std::string where = "column '" + path + "' (" + f.type_name() + ")";
  if (f.dictionary_encoded) throw DataError(where + " is dictionary-encoded, which this reader does not read");
  if (own_buffers(f.type) < 0) throw DataError(where + " has a type whose buffer layout this reader does not read");
  for (const auto& child : f.children) check_layout_known(child, path + "." + child.name);
}

ArrowBatch read_batch(const FlatTable& table, uint64_t body_start, uint64_t body_length) {
  if (table.has(record_batch::compression))
    throw DataError("a record batch's buffers are compressed (LZ4 or ZSTD), which this reader does not read: rewrite "
                    "the file uncompressed (datasets writes its caches uncompressed)");
  ArrowBatch batch;
  batch.length = table.scalar<int64_t>(record_batch::length, 0);
  size_t count = 0;
  const uint8_t* nodes = table.struct_vector(record_batch::nodes, 16, &count);
  for (size_t i = 0; i < count; ++i) {
    ArrowNode node;
    std::memcpy(&node.length, nodes + 16 * i, 8);
    std::memcpy(&node.null_count, nodes + 16 * i + 8, 8);
    if (node.length < 0 || node.null_count < 0 || node.null_count > node.length)
      throw DataError("a record batch has a node of length " + std::to_string(node.length) + " with " +
                      std::to_string(node.null_count) + " nulls");
    batch.nodes.push_back(node);
  }
  const uint8_t* buffers = table.struct_vector(record_batch::buffers, 16, &count);
  for (size_t i = 0; i < count; ++i) {
    int64_t offset = 0, length = 0;
    std::memcpy(&offset, buffers + 16 * i, 8);
    std::memcpy(&length, buffers + 16 * i + 8, 8);
    if (offset < 0 || length < 0 || static_cast<uint64_t>(offset) > body_length ||
        static_cast<uint64_t>(length) > body_length - static_cast<uint64_t>(offset))
      throw DataError("buffer " + std::to_string(i) + " of a record batch ([" + std::to_string(offset) + ", +" +
                      std::to_string(length) + ")) lies outside its " + std::to_string(body_length) + "-byte body");
    batch.buffers.push_back({body_start + static_cast<uint64_t>(offset), static_cast<uint64_t>(length)});
  }
  return batch;
}

// Walks the stream's messages; throws DataError without the file's name (the caller adds it).
ArrowStream read_messages(const MappedFile& file) {
  const uint8_t* data = file.data();
  const uint64_t size = file.size();
  uint64_t pos = 0;
  auto u32 = [&](uint64_t at) {
    uint32_t v;
    std::memcpy(&v, data + at, 4);
    return v;
  };
  ArrowStream stream;
  bool have_schema = false;
  size_t expected_nodes = 0, expected_buffers = 0;
  for (size_t index = 0;; ++index) {
    const std::string which = "message " + std::to_string(index) + " (at byte " + std::to_string(pos) + ")";
    if (pos + 4 > size)
      throw DataError("the stream ends at byte " + std::to_string(size) + " after " + std::to_string(index) +
                      " messages without its end-of-stream marker: the file is truncated or was not written "
                      "completely");
    uint32_t length = u32(pos);
    pos += 4;
    if (length == kContinuation) {
      if (pos + 4 > size) throw DataError(which + " is cut off in its length prefix: the file is truncated");
      length = u32(pos);
      pos += 4;
    }
    if (length == 0) break;  // end of stream
    if (length > size - pos)
      throw DataError(which + " has " + std::to_string(length) + " bytes of metadata but the file has only " +
                      std::to_string(size - pos) + " left: the file is truncated");
    const FlatTable msg = FlatTable::root(data + pos, length);
    pos += length;
    const auto version = msg.scalar<int16_t>(message::version, 0);
    if (version < kMetadataV4)
      throw DataError(which + " has metadata version V" + std::to_string(version + 1) +
                      ", older than V4 (Arrow 0.8), which this reader does not read");
    const auto kind = static_cast<MessageKind>(msg.scalar<uint8_t>(message::header_type, 0));
    const int64_t body_length = msg.scalar<int64_t>(message::body_length, 0);
    if (body_length < 0 || static_cast<uint64_t>(body_length) > size - pos)
      throw DataError(which + " has a " + std::to_string(body_length) + "-byte body but the file has only " +
                      std::to_string(size - pos) + " bytes left: the file is truncated");
    const uint64_t body_start = pos;
    pos += static_cast<uint64_t>(body_length);

    if (kind == MessageKind::Schema) {
      if (have_schema) throw DataError(which + " is a second schema");
      const FlatTable s = msg.table(message::header);
      if (s.scalar<int16_t>(schema::endianness, 0) != 0)
        throw DataError("the schema is big-endian, which this reader does not read");
      for (size_t i = 0; i < s.vector_length(schema::fields); ++i) {
        stream.fields.push_back(read_field(s.table_at(schema::fields, i)));
        check_layout_known(stream.fields.back(), stream.fields.back().name);
        count_arrays(stream.fields.back(), &expected_nodes, &expected_buffers);
      }
      stream.metadata = read_metadata(s, schema::custom_metadata);
      have_schema = true;
      continue;
    }
    if (!have_schema) throw DataError(which + " comes before the schema: this is not an Arrow IPC stream");
    if (kind == MessageKind::DictionaryBatch)
      throw DataError(which + " is a dictionary batch; dictionary-encoded columns are not read here");
    if (kind != MessageKind::RecordBatch)
      throw DataError(which + " has message type " + std::to_string(static_cast<int>(kind)) +
                      ", not a record batch");
    ArrowBatch batch = read_batch(msg.table(message::header), body_start, static_cast<uint64_t>(body_length));
    if (batch.nodes.size() != expected_nodes || batch.buffers.size() != expected_buffers)
      throw DataError(which + " has " + std::to_string(batch.nodes.size()) + " field nodes and " +
                      std::to_string(batch.buffers.size()) + " buffers where the schema has " +
                      std::to_string(expected_nodes) + " and " + std::to_string(expected_buffers));
    stream.batches.push_back(std::move(batch));
  }
  if (!have_schema) throw DataError("the stream has no schema");
  return stream;
}

}  // namespace

std::string ArrowField::type_name() const {
  auto child = [&] { return children.empty() ? std::string("?") : children.front().type_name(); };
  switch (type) {
    case ArrowType::Int:
      return std::string(is_signed ? "int" : "uint") + std::to_string(bit_width);
    case ArrowType::FloatingPoint:
      return precision == ArrowPrecision::Half ? "float16" : precision == ArrowPrecision::Single ? "float32" : "float64";
    case ArrowType::List:
      return "list<" + child() + ">";
    case ArrowType::LargeList:
      return "large_list<" + child() + ">";
    case ArrowType::FixedSizeList:
      return "fixed_size_list<" + child() + ">[" + std::to_string(list_size) + "]";
    case ArrowType::Struct:
      return "struct";
    case ArrowType::Utf8:
      return "string";
    case ArrowType::Binary:
      return "binary";
    case ArrowType::Bool:
      return "bool";
    default:
      return "Arrow type " + std::to_string(static_cast<int>(type));
  }
}

ArrowStream read_arrow_stream(const MappedFile& file) {
  try {
    return read_messages(file);
  } catch (const DataError& e) {
    throw DataError(file.path().string() + ": " + e.what());
  }
}

ColumnLayout column_layout(const std::vector<ArrowField>& fields, size_t column) {
  ColumnLayout layout;
  for (size_t i = 0; i < column; ++i) count_arrays(fields[i], &layout.first_node, &layout.first_buffer);
  return layout;
}

}  // namespace sweep::sharding
