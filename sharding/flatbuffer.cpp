// FlatTable: tables are found through their vtables (a table starts with a signed offset back to
// its vtable: its size, the table's size, then one 16-bit offset per field, 0 where absent);
// offsets to strings, vectors and tables are unsigned and relative to where they are stored.
#include "sharding/flatbuffer.h"

#include <utility>

#include "sharding/data_error.h"

namespace sweep::sharding {

namespace {
[[noreturn]] void fail(const std::string& what) { throw DataError("flatbuffer: " + what); }
}  // namespace

FlatTable FlatTable::root(const uint8_t* data, size_t size) {
  uint32_t offset = 0;
  if (size < sizeof(offset)) fail("the buffer is too short to hold its root offset");
  std::memcpy(&offset, data, sizeof(offset));
  if (offset >= size) fail("the root offset points outside the buffer");
  return FlatTable(data, size, offset);
}

FlatTable::FlatTable(const uint8_t* data, size_t size, size_t pos) : data_(data), size_(size), pos_(pos) {
  const auto back = static_cast<int64_t>(load<int32_t>(pos_));
  const int64_t vtable = static_cast<int64_t>(pos_) - back;
  if (vtable < 0 || static_cast<size_t>(vtable) + 4 > size_) fail("a table's vtable lies outside the buffer");
  vtable_ = static_cast<size_t>(vtable);
  vtable_size_ = load<uint16_t>(vtable_);
  if (vtable_size_ < 4 || vtable_size_ % 2 != 0) fail("a vtable has size " + std::to_string(vtable_size_));
  check_range(vtable_, vtable_size_);
}

void FlatTable::check_range(size_t at, size_t bytes) const {
  if (at > size_ || bytes > size_ - at)
    fail("a read of " + std::to_string(bytes) + " bytes at " + std::to_string(at) + " runs past the " +
         std::to_string(size_) + "-byte buffer");
}

size_t FlatTable::field_position(int field) const {
  const size_t slot = 4 + 2 * static_cast<size_t>(field);
  if (slot + 2 > vtable_size_) return 0;  // a field added after the writer's version
  const uint16_t offset = load<uint16_t>(vtable_ + slot);
  return offset == 0 ? 0 : pos_ + offset;
}

size_t FlatTable::follow(size_t at) const {
  const uint64_t target = at + static_cast<uint64_t>(load<uint32_t>(at));
  if (target >= size_) fail("an offset points outside the buffer");
  return static_cast<size_t>(target);
}

std::string FlatTable::string(int field) const {
  const size_t at = field_position(field);
  if (at == 0) return {};
  const size_t start = follow(at);
  const uint32_t length = load<uint32_t>(start);
  check_range(start + 4, length);
  return std::string(reinterpret_cast<const char*>(data_ + start + 4), length);
}

FlatTable FlatTable::table(int field) const {
  const size_t at = field_position(field);
  if (at == 0) fail("a required table is missing");
  return FlatTable(data_, size_, follow(at));
}

std::pair<size_t, size_t> FlatTable::vector_at(int field, size_t element_size) const {
  const size_t at = field_position(field);
  if (at == 0) return {0, 0};
  const size_t start = follow(at);
  const uint32_t length = load<uint32_t>(start);
  check_range(start + 4, static_cast<size_t>(length) * element_size);
  return {length, start + 4};
}

size_t FlatTable::vector_length(int field) const { return vector_at(field, 4).first; }

FlatTable FlatTable::table_at(int field, size_t index) const {
  const auto [length, first] = vector_at(field, 4);
  if (index >= length) fail("vector index " + std::to_string(index) + " is past its end");
  return FlatTable(data_, size_, follow(first + 4 * index));
}

const uint8_t* FlatTable::struct_vector(int field, size_t struct_size, size_t* count) const {
  const auto [length, first] = vector_at(field, struct_size);
  *count = length;
  return data_ + first;
}

}  // namespace sweep::sharding
