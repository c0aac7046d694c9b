// FlatTable: a read-only, bounds-checked view of one table in a FlatBuffers buffer: the little the
// Arrow IPC reader needs (scalars, strings, tables, vectors of tables and of structs, unions) to
// read the Message, Schema and RecordBatch tables of the format's specification.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>

namespace sweep::sharding {

// A FlatBuffers table at `pos` in [data, data + size). Every read checks that it stays inside the
// buffer and throws DataError("flatbuffer: ...") when it would not: the caller adds the file.
class FlatTable {
 public:
  // The buffer's root table (the buffer starts with its offset).
  static FlatTable root(const uint8_t* data, size_t size);

  bool has(int field) const { return field_position(field) != 0; }

  // A scalar field (bool, integers, enums); `fallback` where the field is absent (its default).
  template <typename T>
  T scalar(int field, T fallback) const {
    static_assert(std::is_arithmetic_v<T>);
    const size_t at = field_position(field);
    return at == 0 ? fallback : load<T>(at);
  }

  // A string field; "" where absent.
  std::string string(int field) const;
  // A table field (a union's value too). Throws where absent: check has() first.
  FlatTable table(int field) const;
  // A vector of tables: its length, and one element.
  size_t vector_length(int field) const;
  FlatTable table_at(int field, size_t index) const;
  // A vector of structs of `struct_size` bytes: the first struct's bytes, checked to hold `*count`.
  const uint8_t* struct_vector(int field, size_t struct_size, size_t* count) const;

  // A little-endian value at absolute position `at` of the buffer, bounds-checked.
  template <typename T>
  T load(size_t at) const {
    check_range(at, sizeof(T));
    T value;
    std::memcpy(&value, data_ + at, sizeof(T));
    return value;
  }

 private:
  FlatTable(const uint8_t* data, size_t size, size_t pos);
  // Absolute position of a field's value, 0 where the table does not have it.
  size_t field_position(int field) const;
  // The position an offset field (or vector element) at `at` points to.
  size_t follow(size_t at) const;
  // A vector field's element count and the position of its first element; {0, 0} where absent.
  std::pair<size_t, size_t> vector_at(int field, size_t element_size) const;
  void check_range(size_t at, size_t bytes) const;

  const uint8_t* data_;
  size_t size_;
  size_t pos_;
  size_t vtable_ = 0;
  uint16_t vtable_size_ = 0;
};

}  // namespace sweep::sharding
