// Benchmark of one job's checkpoint: bytes on disk, time to write it (with fsync) and to load and
// validate it, for a given SAE shape with the absorption penalty on (candidate pairs), and the
// share of the file that is the penalty's state. Prints; asserts nothing.
#include <chrono>
#include <cstdio>
#include <filesystem>

#include <CLI/CLI.hpp>

#include "sae/penalties/absorption.h"
#include "worker/checkpoint.h"
#include "worker/communicator.h"
#include "worker/trainer.h"

using namespace sweep;

namespace {

template <typename Work>
double seconds_of(Work work) {
  auto start = std::chrono::steady_clock::now();
  work();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sweep_bench_checkpoint: size and write/load time of one job's checkpoint"};
  int64_t d_in = 64, d_sae = 128;
  std::string dir = (std::filesystem::temp_directory_path() / "sweep_bench_checkpoint").string();
  app.add_option("--d-in", d_in);
  app.add_option("--d-sae", d_sae);
  app.add_option("--dir", dir, "where to write it (removed afterwards)");
  CLI11_PARSE(app, argc, argv);

  worker::JobConfig cfg;
  cfg.sae.d_in = d_in;
  cfg.sae.d_sae = d_sae;
  cfg.absorption.enabled = true;
  worker::LocalCommunicator comm;
  worker::Trainer trainer(cfg, comm, torch::kCPU);
  trainer.start_fresh(torch::randn({cfg.train.batch_size, d_in}));
  trainer.state().step = 1;
  double absorption_bytes = 0;
  const auto* pairs = sae::pair_tracker(trainer.state().penalties);
  for (const auto& named : pairs->tensors()) {
    absorption_bytes += static_cast<double>(named.second.numel() * named.second.element_size());
  }
  std::filesystem::remove_all(dir);
  worker::Checkpoint saved;
  double write_s = seconds_of([&] { saved = worker::save_checkpoint(dir, trainer.state(), nlohmann::json::object()); });
  double bytes = static_cast<double>(std::filesystem::file_size(saved.dir / "state.safetensors"));
  worker::Trainer other(cfg, comm, torch::kCPU);
  double load_s = seconds_of([&] { worker::restore_newest_checkpoint(dir, other.state()); });
  std::printf("checkpoint d_in %lld d_sae %lld: %.1f MiB, write %.3f s (%.0f MiB/s), load+validate %.3f s; "
              "absorption state %.1f MiB (%.1f%%, %lld candidate pairs)\n",
              static_cast<long long>(d_in), static_cast<long long>(d_sae), bytes / (1 << 20), write_s,
              bytes / (1 << 20) / write_s, load_s, absorption_bytes / (1 << 20), 100.0 * absorption_bytes / bytes,
              static_cast<long long>(pairs->tracked_pairs()));
  std::filesystem::remove_all(dir);
  return 0;
}
