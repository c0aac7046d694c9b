// Saving, validating and restoring a job's training state; a crash at any moment leaves either
// the previous checkpoints or a ".tmp" directory that the next save or restore ignores.
#include "worker/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include <spdlog/spdlog.h>

#include "common/fnv_hash.h"
#include "sharding/mapped_file.h"
#include "sharding/safetensors.h"
#include "worker/job_files.h"
#include "worker/optimizer_step.h"

namespace sweep::worker {
namespace fs = std::filesystem;
namespace {

constexpr int kKeep = 2;
constexpr const char* kStateFile = "state.safetensors";
constexpr const char* kMetaFile = "meta.json";

std::string checksum(const void* data, size_t size) {
  uint64_t hash = kFnvOffset;
  fnv1a_words(hash, data, size);
  return hex_digits(hash);
}

std::string checksum(const fs::path& file) {
  sharding::MappedFile mapped(file);
  return checksum(mapped.data(), mapped.size());
}

// The checksum of meta.json itself (every field but this one), so that its step and the loop's
// progress cannot change unnoticed either.
std::string meta_checksum(nlohmann::json meta) {
  meta.erase("meta_checksum");
  const std::string text = meta.dump();
  return checksum(text.data(), text.size());
}

fs::path checkpoints_dir(const fs::path& job_dir) { return job_dir / "checkpoints"; }

std::string step_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step-%08lld", static_cast<long long>(step));
  return buf;
}

// Finished checkpoint directories, newest first ("step-N.tmp" leftovers of a crash excluded).
std::vector<fs::path> finished_checkpoints(const fs::path& job_dir) {
  std::vector<fs::path> dirs;
  if (!fs::is_directory(checkpoints_dir(job_dir))) return dirs;
  for (const auto& entry : fs::directory_iterator(checkpoints_dir(job_dir))) {
    auto name = entry.path().filename().string();
    if (entry.is_directory() && name.rfind("step-", 0) == 0 && entry.path().extension() != ".tmp") {
      dirs.push_back(entry.path());
    }
  }
  std::sort(dirs.begin(), dirs.end(), std::greater<>());
  return dirs;
}

// Throws std::runtime_error with what is wrong; otherwise copies every tensor into `state`.
nlohmann::json load_checkpoint(const fs::path& dir, TrainingState& state) {
  auto meta = read_json(dir / kMetaFile);
  if (meta.value("meta_checksum", "") != meta_checksum(meta)) {
    throw std::runtime_error((dir / kMetaFile).string() + ": checksum mismatch (edited or damaged)");
  }
  auto file = dir / kStateFile;
  if (!fs::exists(file)) throw std::runtime_error(file.string() + " is missing");
  if (fs::file_size(file) != meta.at("state_bytes").get<uint64_t>()) {
    throw std::runtime_error(file.string() + " has " + std::to_string(fs::file_size(file)) + " bytes, meta.json says " +
                             meta.at("state_bytes").dump());
  }
  if (checksum(file) != meta.at("checksum").get<std::string>()) throw std::runtime_error(file.string() + ": checksum mismatch");
  auto saved = sharding::read_safetensors(file);
  auto targets = training_state_tensors(state);
  for (const auto& [name, target] : targets) {  // check all before changing anything
    auto it = saved.find(name);
    if (it == saved.end()) throw std::runtime_error(file.string() + " lacks tensor " + name);
    if (it->second.sizes() != target.sizes() || it->second.scalar_type() != target.scalar_type()) {
      throw std::runtime_error(file.string() + ": tensor " + name + " has the wrong shape or dtype for this job");
    }
  }
  auto steps = saved.find("adam.step");
  if (steps == saved.end() || steps->second.numel() != static_cast<int64_t>(state.model->parameters().size())) {
    throw std::runtime_error(file.string() + " lacks the optimizer's step counts");
  }
  const int64_t step = meta.at("step").get<int64_t>();
  for (auto& penalty : state.penalties) {
    if (!penalty) continue;
    try {
      penalty->restore(saved, step);
    } catch (const std::exception& e) {
      throw std::runtime_error(file.string() + ": " + e.what());
    }
  }
  torch::NoGradGuard no_grad;
  for (auto& [name, target] : targets) target.copy_(saved.at(name));
  set_adam_steps(state, steps->second);
  state.step = step;
  // Checkpoints from before the code's size was planned: the job's first size, as at a start.
  state.code_size = meta.value("code_size", state.code_size);
  return meta;
}

void fsync_path(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

std::vector<std::pair<std::string, torch::Tensor>> training_state_tensors(TrainingState& state) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  auto params = state.model->named_parameters();
  for (const auto& p : params) out.emplace_back("param." + p.key(), p.value());
  for (const auto& b : state.model->named_buffers()) out.emplace_back("buffer." + b.key(), b.value());
  for (const auto& p : params) {
    auto& adam = adam_state(*state.optimizer, p.value());
    out.emplace_back("adam.exp_avg." + p.key(), adam.exp_avg());
    out.emplace_back("adam.exp_avg_sq." + p.key(), adam.exp_avg_sq());
  }
  out.emplace_back("tokens_since_fired", state.tokens_since_fired);
  return out;
}

torch::Tensor adam_steps(TrainingState& state) {
  auto params = state.model->parameters();
  auto steps = torch::zeros({static_cast<int64_t>(params.size())}, torch::kLong);
  for (size_t i = 0; i < params.size(); ++i) steps[i] = adam_state(*state.optimizer, params[i]).step();
  return steps;
}

void set_adam_steps(TrainingState& state, const torch::Tensor& steps) {
  auto params = state.model->parameters();
  auto cpu = steps.to(torch::kCPU, torch::kLong);
  for (size_t i = 0; i < params.size(); ++i) adam_state(*state.optimizer, params[i]).step(cpu[i].item<int64_t>());
}

Checkpoint save_checkpoint(const fs::path& job_dir, TrainingState& state, const nlohmann::json& progress) {
  auto root = checkpoints_dir(job_dir);
  Checkpoint saved{state.step, progress, root / step_name(state.step)};
  auto tmp = root / (step_name(state.step) + ".tmp");
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  auto tensors = training_state_tensors(state);
  for (const auto& penalty : state.penalties) {
    if (!penalty) continue;
    for (auto& named : penalty->tensors()) tensors.push_back(named);
  }
  tensors.emplace_back("adam.step", adam_steps(state));
  sharding::write_safetensors(tmp / kStateFile, tensors);
  fsync_path(tmp / kStateFile);
  nlohmann::json meta = {{"step", state.step},
                         {"state_bytes", fs::file_size(tmp / kStateFile)},
                         {"checksum", checksum(tmp / kStateFile)},
                         {"data_cursor", {{"step", state.step}}},  // data order is a function of the step
                         {"code_size", state.code_size},
                         {"progress", progress}};
  meta["meta_checksum"] = meta_checksum(meta);
  write_json_atomic(tmp / kMetaFile, meta);
  fs::remove_all(saved.dir);  // an older run's checkpoint of the same step
  fs::rename(tmp, saved.dir);
  fsync_path(root);
  auto dirs = finished_checkpoints(job_dir);
  for (size_t i = kKeep; i < dirs.size(); ++i) fs::remove_all(dirs[i]);
  for (const auto& entry : fs::directory_iterator(root)) {  // leftovers of a crash mid-write
    if (entry.path().extension() == ".tmp") fs::remove_all(entry.path());
  }
  return saved;
}

std::optional<Checkpoint> restore_newest_checkpoint(const fs::path& job_dir, TrainingState& state) {
  for (const auto& dir : finished_checkpoints(job_dir)) {
    try {
      auto meta = load_checkpoint(dir, state);
      return Checkpoint{state.step, meta.value("progress", nlohmann::json::object()), dir};
    } catch (const std::exception& e) {
      spdlog::warn("checkpoint {} is unusable ({}); trying the previous one", dir.string(), e.what());
    }
  }
  return std::nullopt;
}

double checkpoint_bytes(const JobConfig& cfg, int64_t d_in) {
  double d_sae = static_cast<double>(cfg.sae.d_sae);
  double params = 2.0 * d_sae * static_cast<double>(d_in) + d_sae + static_cast<double>(d_in) + d_sae;
  double penalties = sae::penalties_checkpoint_bytes({cfg.resolved, cfg.absorption, cfg.sae.d_sae, cfg.seed, {}}, d_in);
  return 4.0 * 3.0 * params + penalties + 8.0 * d_sae;
}

void remove_checkpoints(const fs::path& job_dir) { fs::remove_all(checkpoints_dir(job_dir)); }

}  // namespace sweep::worker
