// Benchmark of one job's training step: step time, tokens/s, the absorption regulariser's share
// (step time with it minus without it), communication time and bytes all-reduced per step.
// Run alone or under mpirun: all ranks form one job's group. Prints figures; asserts nothing.
#include <mpi.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include <CLI/CLI.hpp>

#include "sharding/dataset.h"
#include "worker/cpu_threads.h"
#include "worker/mpi_communicator.h"
#include "worker/timing_communicator.h"
#include "worker/trainer.h"

using namespace sweep;

namespace {

struct Timing {
  double step_s = 0, comm_s = 0, bytes = 0;
};

Timing time_steps(worker::JobConfig cfg, bool absorption, int steps, worker::Communicator& group) {
  cfg.absorption.enabled = absorption;
  worker::TimingCommunicator comm(group);
  auto data = sharding::open_dataset(cfg.data);
  worker::Trainer trainer(cfg, comm, torch::kCPU);
  trainer.initialize_decoder_bias(data->train_shard(0, cfg.train.batch_size, comm.rank(), comm.size()).activations);
  trainer.step(data->train_shard(0, cfg.train.batch_size, comm.rank(), comm.size()).activations);  // warm-up
  comm.seconds = comm.bytes_reduced = 0;
  double step_s = 0;
  for (int s = 1; s <= steps; ++s) {
    auto x = data->train_shard(s, cfg.train.batch_size, comm.rank(), comm.size()).activations;  // not timed
    comm.barrier();
    auto start = std::chrono::steady_clock::now();
    trainer.step(x);
    step_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  return {step_s / steps, comm.seconds / steps, comm.bytes_reduced / steps};
}

// Times the step of one job on all ranks (the communicator must be gone before MPI_Finalize).
void run(int64_t d_in, int64_t d_sae, int64_t batch, int steps) {
  worker::MpiCommunicator group(MPI_COMM_WORLD);
  int local_size = 1;
  {
    MPI_Comm local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local);
    MPI_Comm_size(local, &local_size);
    MPI_Comm_free(&local);
  }
  int threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / local_size);
  worker::use_cpu_threads(threads);

  worker::JobConfig cfg;
  cfg.data.synthetic.d_in = d_in;
  cfg.data.synthetic.n_roots = d_in / 4;
  cfg.data.eval_tokens = 0;
  cfg.sae.d_in = d_in;
  cfg.sae.d_sae = d_sae;
  cfg.train.batch_size = batch;
  cfg.absorption.dot_threshold = 0.3;
  auto with = time_steps(cfg, true, steps, group);
  auto without = time_steps(cfg, false, steps, group);
  if (group.rank() == 0) {
    std::printf("ranks %d (CPU threads/rank %d)  d_in %lld  d_sae %lld  batch %lld  steps %d\n", group.size(), threads, static_cast<long long>(d_in), static_cast<long long>(d_sae),
                static_cast<long long>(batch), steps);
    std::printf("  step %.1f ms   tokens/s %.0f\n", 1e3 * with.step_s, batch / with.step_s);
    std::printf("  absorption regulariser share %.1f%% (step without it %.1f ms)\n",
                100.0 * (with.step_s - without.step_s) / with.step_s, 1e3 * without.step_s);
    std::printf("  communication share %.1f%% (%.2f ms/step), all-reduced %.2f MiB/step\n",
                100.0 * with.comm_s / with.step_s, 1e3 * with.comm_s, with.bytes / (1024.0 * 1024.0));
  }
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  CLI::App app{"sweep_bench: time one job's training step"};
  int64_t d_in = 256, d_sae = 2048, batch = 1024;
  int steps = 10;
  app.add_option("--d-in", d_in);
  app.add_option("--d-sae", d_sae);
  app.add_option("--batch", batch);
  app.add_option("--steps", steps);
  CLI11_PARSE(app, argc, argv);
  run(d_in, d_sae, batch, steps);
  MPI_Finalize();
  return 0;
}
