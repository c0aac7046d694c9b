// The SAELens export writer and the metrics log of a job directory.
#include "worker/job_files.h"

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "sharding/safetensors.h"

namespace sweep::worker {

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
