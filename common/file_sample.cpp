// sample_file: pread of the sampled blocks, hashed in order.
#include "common/file_sample.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "common/fnv_hash.h"

namespace sweep {
namespace {

constexpr uint64_t kHead = 64 * 1024, kBlock = 4 * 1024, kBlocks = 32;

}  // namespace

FileSample sample_file(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);  // a FIFO: no wait for a writer
  if (fd < 0) throw std::runtime_error(path.string() + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  ::fstat(fd, &st);
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  uint64_t hash = kFnvOffset;
  std::vector<char> buffer(kHead);
  auto read_at = [&](uint64_t offset, uint64_t length) {
    ssize_t got = ::pread(fd, buffer.data(), std::min(length, size - std::min(size, offset)), static_cast<off_t>(offset));
    if (got > 0) fnv1a_bytes(hash, buffer.data(), static_cast<size_t>(got));
  };
  read_at(0, kHead);
  for (uint64_t b = 0; b < kBlocks && size > kHead; ++b) read_at(kHead + (size - kHead) / kBlocks * b, kBlock);
  if (size > kBlock) read_at(size - kBlock, kBlock);
  ::close(fd);
  return {size, static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec, hex_digits(hash)};
}

}  // namespace sweep
