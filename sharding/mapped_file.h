// MappedFile: RAII read-only memory mapping of a whole file, so readers can pull rows
// straight from the page cache without reading the file up front.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>

namespace sweep::sharding {

class MappedFile {
 public:
  // Maps the whole file read-only; throws DataError naming the file and strerror on failure.
  explicit MappedFile(std::filesystem::path path);
  ~MappedFile();

  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  // Start of the mapping; nullptr for an empty file.
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  void unmap() noexcept;

  std::filesystem::path path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace sweep::sharding
