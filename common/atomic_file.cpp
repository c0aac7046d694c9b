// Atomic whole-file writes and JSON reads.
#include "common/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace sweep {
namespace {

namespace fs = std::filesystem;

fs::path temporary_of(const fs::path& file) {
  auto tmp = file;
  tmp += ".tmp." + std::to_string(::getpid());  // one per writer: several processes may share a sweep
  return tmp;
}

[[noreturn]] void fail(const fs::path& file, const char* what, int err) {
  throw std::runtime_error("cannot write " + file.string() + " (" + what + "): " + std::strerror(err));
}

// Writes `contents` to `tmp` and flushes it to disk; on any failure (a full disk shows at write,
// fsync or close) the temporary is removed and the error names the file the caller asked for.
void write_temporary(const fs::path& file, const fs::path& tmp, const std::string& contents) {
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) fail(file, "open", errno);
  auto give_up = [&](const char* what) {
    int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    fail(file, what, err);
  };
  const char* data = contents.data();
  size_t left = contents.size();
  while (left > 0) {
    ssize_t n = ::write(fd, data, left);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) give_up("write");
    data += n;
    left -= static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) give_up("fsync");
  if (::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    fail(file, "close", err);
  }
}

}  // namespace

void write_file_atomic(const fs::path& file, const std::string& contents) {
  write_files_atomic({{file, contents}});
}

void write_files_atomic(const std::vector<std::pair<fs::path, std::string>>& files) {
  std::vector<fs::path> written;
  try {
    for (const auto& [file, contents] : files) {
      write_temporary(file, temporary_of(file), contents);
      written.push_back(temporary_of(file));
    }
  } catch (...) {
    std::error_code ec;
    for (const auto& tmp : written) fs::remove(tmp, ec);  // the old files stay as they were
    throw;
  }
  if (files.size() == 1) {  // one rename: atomic by itself
    try {
      fs::rename(temporary_of(files[0].first), files[0].first);
    } catch (...) {
      std::error_code ec;
      fs::remove(temporary_of(files[0].first), ec);
      throw;
    }
    return;
  }
  // Into place together or not at all: each old file is kept by a second link first (it never goes
  // missing), and a failed rename puts back those already replaced (renames and links within a
  // directory need no new space).
  std::vector<std::pair<fs::path, fs::path>> kept;  // (file, a link to its old version)
  std::error_code ec;
  size_t placed = 0;
  try {
    for (const auto& [file, contents] : files) {
      if (fs::exists(fs::symlink_status(file)) && !fs::is_regular_file(fs::symlink_status(file))) {
        throw std::runtime_error(file.string() + " is not a regular file; move it away");
      }
    }
    for (const auto& [file, contents] : files) {
      if (!fs::exists(file)) continue;
      fs::path old = file.string() + ".old." + std::to_string(::getpid());
      fs::remove(old, ec);
      fs::create_hard_link(file, old);
      kept.emplace_back(file, old);
    }
    for (const auto& [file, contents] : files) {
      fs::rename(temporary_of(file), file);
      ++placed;
    }
  } catch (...) {
    for (size_t i = 0; i < placed; ++i) {
      const auto& file = files[i].first;
      auto old = std::find_if(kept.begin(), kept.end(), [&](const auto& k) { return k.first == file; });
      if (old != kept.end()) {
        fs::rename(old->second, file, ec);
      } else {
        fs::remove(file, ec);  // it did not exist before
      }
    }
    for (const auto& [file, old] : kept) fs::remove(old, ec);
    for (const auto& tmp : written) fs::remove(tmp, ec);
    throw;
  }
  for (const auto& [file, old] : kept) fs::remove(old, ec);
}

void write_json_atomic(const fs::path& file, const nlohmann::json& value) {
  write_file_atomic(file, value.dump(2) + "\n");
}

nlohmann::json read_json(const fs::path& file) {
  std::ifstream in(file);
  if (!in) throw std::runtime_error("cannot read " + file.string());
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(file.string() + ": not valid JSON (" + e.what() + ")");
  }
}

}  // namespace sweep
