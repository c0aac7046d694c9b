// Atomic JSON/text writes and the SAELens export writer for a job directory.
#include "worker/job_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "sharding/safetensors.h"

namespace sweep::worker {

void write_file_atomic(const std::filesystem::path& file, const std::string& contents) {
  auto tmp = file;
  tmp += ".tmp." + std::to_string(::getpid());  // one per writer: several processes may share a sweep
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) throw std::runtime_error("cannot write " + tmp.string() + ": " + std::strerror(errno));
  const char* data = contents.data();
  size_t left = contents.size();
  while (left > 0) {
    ssize_t n = ::write(fd, data, left);
    if (n < 0) {
      int err = errno;
      ::close(fd);
      throw std::runtime_error("cannot write " + tmp.string() + ": " + std::strerror(err));
    }
    data += n;
    left -= static_cast<size_t>(n);
  }
  ::fsync(fd);
  ::close(fd);
  std::filesystem::rename(tmp, file);
}

void write_json_atomic(const std::filesystem::path& file, const nlohmann::json& value) {
  write_file_atomic(file, value.dump(2) + "\n");
}

nlohmann::json read_json(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) throw std::runtime_error("cannot read " + file.string());
  return nlohmann::json::parse(in);
}

void write_saelens(const std::filesystem::path& dir, const sae::SaeLensExport& exported) {
  std::filesystem::create_directories(dir);
  write_json_atomic(dir / "cfg.json", exported.cfg);
  sharding::write_safetensors(dir / "sae_weights.safetensors", exported.weights);
  sharding::write_safetensors(dir / "sparsity.safetensors", exported.sparsity);
}

MetricsLog::MetricsLog(const std::filesystem::path& file, uint64_t keep_bytes) : file_(file), bytes_(keep_bytes) {
  if (keep_bytes > 0) {
    if (!std::filesystem::exists(file) || std::filesystem::file_size(file) < keep_bytes) {
      throw std::runtime_error(file.string() + " is shorter than its checkpoint says (" + std::to_string(keep_bytes) +
                               " bytes): it was changed or truncated since");
    }
    std::filesystem::resize_file(file, keep_bytes);
  }
  out_.open(file, keep_bytes > 0 ? std::ios::app : std::ios::trunc);
  if (!out_) throw std::runtime_error("cannot write " + file.string());
}

void MetricsLog::append(const nlohmann::json& line) {
  auto text = line.dump() + "\n";
  out_ << text << std::flush;
  if (!out_) throw std::runtime_error("cannot write " + file_.string() + ": " + std::strerror(errno));
  bytes_ += text.size();
}

}  // namespace sweep::worker
