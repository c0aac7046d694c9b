// MappedFile: open + fstat + mmap of a whole file read-only, munmap on destruction.
// The descriptor is closed right after mapping; the mapping stays valid without it.
#include "sharding/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "sharding/data_error.h"

namespace sweep::sharding {
namespace {

[[noreturn]] void throw_errno(const std::filesystem::path& path, const char* what) {
  throw DataError(path.string() + ": cannot " + what + ": " + std::strerror(errno));
}

// Closes the descriptor when the constructor leaves, whether it mapped or threw.
struct FdCloser {
  int fd;
  ~FdCloser() { ::close(fd); }
};

}  // namespace

MappedFile::MappedFile(std::filesystem::path path) : path_(std::move(path)) {
  int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);  // a FIFO: no wait for a writer
  if (fd < 0) throw_errno(path_, "open");
  FdCloser closer{fd};

  struct stat st {};
  if (::fstat(fd, &st) != 0) throw_errno(path_, "stat");
  if (!S_ISREG(st.st_mode)) throw DataError(path_.string() + ": not a regular file (a directory, FIFO or device)");
  size_ = static_cast<size_t>(st.st_size);
  if (size_ == 0) return;  // mmap rejects zero-length mappings

  void* mapped = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
  if (mapped == MAP_FAILED) throw_errno(path_, "mmap");
  data_ = static_cast<const uint8_t*>(mapped);
}

MappedFile::~MappedFile() { unmap(); }

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    unmap();
    path_ = std::move(other.path_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

void MappedFile::unmap() noexcept {
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
  data_ = nullptr;
  size_ = 0;
}

}  // namespace sweep::sharding
