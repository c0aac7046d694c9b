// Benchmark of one job's training step on the CPU or a GPU: step time, tokens/s, the absorption
// penalty's share (step time with it minus without it), the time of one candidate search, the
// step's FLOP rate against the device's measured matrix-multiply rate, communication time, the
// bytes the step all-reduces (the penalty's pair counts apart from the gradients), and peak memory.
// The job with the penalty and the one without step in turn, and step times are medians.
// Run alone or under mpirun: all ranks form one job's group. Prints figures; asserts nothing.
#include <mpi.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "sae/batch_statistics.h"
#include "sae/penalties/absorption.h"
#include "sharding/dataset.h"
#include "worker/cpu_threads.h"
#include "worker/freed_memory.h"
#include "worker/matmul_rate.h"
#include "worker/mpi_communicator.h"
#include "worker/timing_communicator.h"
#include "worker/trainer.h"
#ifdef SWEEP_WITH_CUDA
#include "bench/cuda_sync_counter.h"
#endif

using namespace sweep;

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

struct Timing {
  double step_s = 0, comm_s = 0, bytes = 0, search_s = 0;
  double co_firing_s = 0, penalty_s = 0, refresh_due_s = 0;  // the penalty's own work, timed apart
  int64_t searches = 0, again = 0, tracked_pairs = 0, pair_count_bytes = 0, gradient_bytes = 0;
  int64_t synchronizations = -1, counted_attempts = 0;  // CUDA: LibTorch's synchronizing operations in counted steps
  double entries_per_row = 0;  // the sparse code's mean entries a row at the end (0 where not counted: dense, topk)
  std::string tracking = "off";
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

// One job's trainer, stepped on request, with each step's time kept.
class StepTimer {
 public:
  StepTimer(worker::JobConfig cfg, worker::Communicator& group, torch::Device device)
      : cfg_(std::move(cfg)), device_(device), comm_(group), data_(sharding::open_dataset(cfg_.data)),
        trainer_(cfg_, comm_, device) {
    auto start = Clock::now();
    trainer_.start_fresh(shard(0));
    timing_.search_s = seconds_since(start);  // the bias's all-reduce is negligible beside the search
    trainer_.step(shard(0));                  // warm-up
    comm_.seconds = comm_.bytes_reduced = 0;
  }
  void step(int s) {
    auto x = shard(s).to(device_);  // not timed
    comm_.barrier();
    auto start = Clock::now();
    auto stats = trainer_.step(x);
    timing_.searches += stats.refreshed;
    timing_.again += stats.attempts - 1;
    seconds_.push_back(seconds_since(start));
  }
  // CUDA builds on a GPU: the synchronizing operations LibTorch makes in `steps` more steps (the
  // batches already on the device), and the attempts they took (a step computed again counts twice).
  void count_synchronizations(int from, int steps) {
#ifdef SWEEP_WITH_CUDA
    if (!device_.is_cuda()) return;
    std::vector<torch::Tensor> batches;
    for (int s = from; s < from + steps; ++s) batches.push_back(shard(s).to(device_));
    bench::CudaSyncCounter counter;
    for (const auto& x : batches) timing_.counted_attempts += trainer_.step(x).attempts;
    timing_.synchronizations = counter.synchronizations();
#else
    (void)from, (void)steps;
#endif
  }
  // The penalty's work in this state, each part timed alone (median of 5): the co-firing counts of
  // the next batch, the penalty with its backward, and the drift bound. The step-time difference
  // holds these and what they cost the rest of the step (caches); on a noisy machine it is the
  // less precise of the two.
  void time_penalty_parts(int s) {
    const auto* found = sae::pair_tracker(trainer_.state().penalties);
    if (!found) return;
    const auto& pairs = *found;
    auto& W_dec = trainer_.state().model->W_dec;
    auto fwd = trainer_.model().forward_train(shard(s).to(device_), trainer_.state().code_size);  // the step's code
    auto median_of = [&](auto work, auto before) {
      std::vector<double> v;
      for (int r = 0; r < 5; ++r) {
        before();
        auto start = Clock::now();
        work();
        v.push_back(seconds_since(start));
      }
      return median(v);
    };
    timing_.co_firing_s = median_of([&] {  // with the bits or firing the step makes for them
      auto counts = pairs.counts_from_bits() ? pairs.count_co_firing({}, sae::firing_bits(fwd))
                                             : pairs.count_co_firing(sae::firing(fwd.f));
      counts.sum().item<double>();
    }, [] {});
    timing_.penalty_s = median_of([&] {
      auto loss = pairs.penalty(W_dec).loss;
      if (loss.requires_grad()) loss.backward();
      W_dec.mutable_grad() = torch::Tensor();
    }, [] {});
    // The bound on weights it has not seen (the tracker keeps the drift of the weights it last saw,
    // for the next step's penalty), as after each optimizer step: an in-place no-op makes them new.
    timing_.refresh_due_s = median_of([&] { pairs.refresh_due(W_dec).item<bool>(); },
                                      [&] { W_dec.detach().mul_(1.0); });
  }
  // Median step time; the mean communication time and bytes.
  Timing timing() {
    Timing t = timing_;
    const auto* pairs = sae::pair_tracker(trainer_.state().penalties);
    const double steps = static_cast<double>(seconds_.size());
    t.step_s = median(seconds_);
    t.comm_s = comm_.seconds / steps;
    t.bytes = comm_.bytes_reduced / steps;
    t.tracked_pairs = pairs ? pairs->tracked_pairs() : 0;
    t.pair_count_bytes = pairs ? 4 * pairs->counts_numel() : 0;
    t.gradient_bytes = 4 * trainer_.step_collective_sizes()[1];
    t.tracking = !pairs ? "off" : pairs->dense() ? "dense" : "candidates";
    auto x = shard(0).to(device_);
    if (auto entries = trainer_.model().forward_train(x, 0).entries; entries.defined()) {
      t.entries_per_row = entries.item<double>() / static_cast<double>(x.size(0));
    }
    return t;
  }

 private:
  torch::Tensor shard(int s) const {
    return data_->train_shard(s, cfg_.train.batch_size, comm_.rank(), comm_.size()).activations;
  }
  worker::JobConfig cfg_;
  torch::Device device_;
  worker::TimingCommunicator comm_;
  std::unique_ptr<sharding::Dataset> data_;
  worker::Trainer trainer_;
  Timing timing_;
  std::vector<double> seconds_;
};

double peak_rss_gib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / (1024.0 * 1024.0);
}

// Times the step of one job on all ranks (the communicator must be gone before MPI_Finalize).
// The SAE's shape and training step as sweep_bench's options give them.
struct Shape {
  int64_t d_in = 256, d_sae = 2048, batch = 1024, k = 32;
  double threshold = 0.001;  // jumprelu's initial threshold
  std::string arch = "relu", step = "auto", matmul = "float32", code_width = "auto";
};

// The penalised job: the absorption penalty (--penalty absorption) or OrtSAE's orthogonality
// penalty at weight 1 and --chunk-size (--penalty orthogonality).
struct PenaltyChoice {
  std::string name = "absorption", pairs = "candidates";
  double tau = 0.3;
  int64_t chunk_size = 1024;
};

void run(const Shape& shape, int steps, const PenaltyChoice& choice, bool cuda, int threads) {
  const std::string& pairs = choice.pairs;
  const double tau = choice.tau;
  const int64_t d_in = shape.d_in, d_sae = shape.d_sae, batch = shape.batch;
  worker::MpiCommunicator group(MPI_COMM_WORLD);
  int local_size = 1, local_rank = 0;
  {
    MPI_Comm local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local);
    MPI_Comm_size(local, &local_size);
    MPI_Comm_rank(local, &local_rank);
    MPI_Comm_free(&local);
  }
  const torch::Device device =
      cuda ? torch::Device(torch::kCUDA, static_cast<int8_t>(local_rank % torch::cuda::device_count())) : torch::kCPU;
  if (threads == 0) threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / local_size);
  worker::use_cpu_threads(threads, shape.matmul == "bfloat16" ? worker::ProductPool::LibTorch : worker::ProductPool::Blas);
  worker::keep_freed_memory();

  worker::JobConfig cfg;
  cfg.data.synthetic.d_in = d_in;
  cfg.data.synthetic.n_roots = d_in / 4;
  cfg.data.eval_tokens = 0;
  cfg.sae.d_in = d_in;
  cfg.sae.d_sae = d_sae;
  cfg.sae.arch = shape.arch;
  cfg.sae.k = shape.k;
  cfg.sae.init_threshold = shape.threshold;
  cfg.sae.step = shape.step == "dense" ? sae::StepMode::Dense : shape.step == "sparse" ? sae::StepMode::Sparse : sae::StepMode::Auto;
  cfg.sae.matmul = shape.matmul == "bfloat16" ? sae::MatmulDtype::BFloat16 : sae::MatmulDtype::Float32;
  cfg.sae.code_sizes = shape.code_width == "batch"     ? sae::CodeSizes::OfTheBatch
                        : shape.code_width == "planned" ? sae::CodeSizes::Planned
                                                        : sae::CodeSizes::Auto;
  cfg.train.batch_size = batch;
  cfg.absorption.dot_threshold = tau;
  cfg.absorption.pairs = pairs == "dense" ? sae::PairTracking::Dense : sae::PairTracking::Candidates;
  cfg.absorption.enabled = false;
  cfg.resolved = {{"orthogonality.penalty", 0.0}, {"orthogonality.chunk_size", choice.chunk_size}};
  auto with_penalty = cfg;
  if (choice.name == "absorption") with_penalty.absorption.enabled = true;
  if (choice.name == "orthogonality") with_penalty.resolved["orthogonality.penalty"] = 1.0;
  // Steps of the two jobs alternate, so that the machine's drift falls on both alike.
  StepTimer plain(cfg, group, device), penalised(with_penalty, group, device);
  for (int s = 1; s <= steps; ++s) {
    plain.step(s);
    penalised.step(s);
  }
  penalised.time_penalty_parts(steps + 1);
  constexpr int kCountedSteps = 5;
  plain.count_synchronizations(steps + 1, kCountedSteps);
  penalised.count_synchronizations(steps + 1, kCountedSteps);
  auto without = plain.timing(), with = penalised.timing();
  if (group.rank() != 0) return;
  // The step's matrix products: encoder and decoder forward (2 B d_in d_sae FLOPs each), their
  // weight gradients and the decoder's input gradient (the encoder's input needs none).
  const double step_flops = 10.0 * static_cast<double>(batch) * d_in * d_sae / group.size();
  const int64_t n = device.is_cuda() ? 8192 : 2048;
  const bool bf16 = cfg.sae.matmul == sae::MatmulDtype::BFloat16;
  // The rate of the products' own precision is the limit.
  const double limit = worker::matmul_flops_per_second(device, bf16 ? torch::kBFloat16 : torch::kFloat, n);
  const double mib = 1024.0 * 1024.0, interval = static_cast<double>(cfg.absorption.refresh_every);
  std::printf("device %s  ranks %d (CPU threads/rank %d)  %s (k %lld, initial threshold %g: where it reads them)  step %s  "
              "train.code_width %s  products %s  d_in %lld  d_sae %lld  batch %lld  steps %d  "
              "penalty %s  tau %.2f  pairs %s  chunk_size %lld\n",
              device.str().c_str(), group.size(), threads, shape.arch.c_str(), static_cast<long long>(shape.k),
              shape.threshold, shape.step.c_str(), shape.code_width.c_str(), shape.matmul.c_str(),
              static_cast<long long>(d_in), static_cast<long long>(d_sae),
              static_cast<long long>(batch), steps, choice.name.c_str(), tau, with.tracking.c_str(),
              static_cast<long long>(choice.chunk_size));
  std::printf("  step %.1f ms   tokens/s %.0f   (without the penalty %.1f ms; medians of alternating steps)\n", 1e3 * with.step_s, batch / with.step_s,
              1e3 * without.step_s);
  if (without.entries_per_row > 0) {
    std::printf("  the code's entries a row at the end, without the penalty: %.1f on average, %.2f%% of d_sae\n",
                without.entries_per_row, 100.0 * without.entries_per_row / static_cast<double>(d_sae));
  }
  if (without.synchronizations >= 0) {
    std::printf("  synchronizing CUDA operations (LibTorch's sync debug mode) in %d more steps: %lld in %lld attempts without the "
                "penalty, %lld in %lld attempts with it (one a step is the step's read)\n",
                kCountedSteps, static_cast<long long>(without.synchronizations), static_cast<long long>(without.counted_attempts),
                static_cast<long long>(with.synchronizations), static_cast<long long>(with.counted_attempts));
  }
  std::printf("  steps computed again (a cut code or a candidate search): %lld with the penalty, %lld without, of %d each\n",
              static_cast<long long>(with.again), static_cast<long long>(without.again), steps);
  std::printf("  penalty share %.1f%% of the step (%lld candidate searches in these steps)\n",
              100.0 * (with.step_s - without.step_s) / with.step_s, static_cast<long long>(with.searches));
  const double parts_s = with.co_firing_s + with.penalty_s + with.refresh_due_s;
  if (with.tracking != "off") std::printf("  penalty's work timed apart %.1f ms = %.1f%% of a step without it (co-firing %.1f, penalty and its backward %.1f, "
              "drift bound %.1f ms)\n",
              1e3 * parts_s, 100.0 * parts_s / (without.step_s + parts_s), 1e3 * with.co_firing_s, 1e3 * with.penalty_s,
              1e3 * with.refresh_due_s);
  if (with.tracking == "candidates") {
    double amortised = (with.step_s - without.step_s) + with.search_s / interval;
    std::printf("  one candidate search %.0f ms; with one every %.0f steps: penalty share %.1f%%; %lld candidate pairs\n",
                1e3 * with.search_s, interval, 100.0 * amortised / (without.step_s + amortised),
                static_cast<long long>(with.tracked_pairs));
  }
  std::printf("  dense-equivalent FLOP rate without the penalty %.1f GFLOP/s per rank (10 B d_in d_sae per step; a sparse step does less) = %.1f%% of this "
              "device's measured %lld^3 %s matmul rate, %.1f GFLOP/s\n",
              step_flops / without.step_s / 1e9, 100.0 * step_flops / without.step_s / limit, static_cast<long long>(n),
              bf16 ? "bf16" : "fp32", limit / 1e9);
  if (device.is_cuda() && !bf16) {
    std::printf("  the device's measured %lld^3 bf16 matmul rate: %.1f GFLOP/s (this run's products are fp32)\n",
                static_cast<long long>(n), worker::matmul_flops_per_second(device, torch::kBFloat16, n) / 1e9);
  }
  std::printf("  all-reduce per step in a group: penalty's pair counts %.3f MiB, gradients and terms %.2f MiB\n",
              with.pair_count_bytes / mib, with.gradient_bytes / mib);
  std::printf("  communication share %.1f%% (%.2f ms/step), all-reduced %.2f MiB/step   peak memory of both jobs %.2f GiB\n",
              100.0 * with.comm_s / with.step_s, 1e3 * with.comm_s, with.bytes / mib, peak_rss_gib());
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  CLI::App app{"sweep_bench: time one job's training step"};
  Shape shape;
  int steps = 10;
  PenaltyChoice penalty;
  std::string device = "cpu";
  int threads = 0;
  app.add_option("--d-in", shape.d_in);
  app.add_option("--d-sae", shape.d_sae);
  app.add_option("--batch", shape.batch);
  app.add_option("--arch", shape.arch, "sae.arch (relu, topk, jumprelu, batchtopk, ...)")->check(CLI::IsMember(sae::architecture_names()));
  app.add_option("--k", shape.k, "sae.k (topk, batchtopk)");
  app.add_option("--threshold", shape.threshold, "sae.init_threshold (jumprelu)");
  app.add_option("--step", shape.step, "train.step: auto, dense or sparse")->check(CLI::IsMember({"auto", "dense", "sparse"}));
  app.add_option("--matmul-dtype", shape.matmul, "train.matmul_dtype: float32 or bfloat16")
      ->check(CLI::IsMember({"float32", "bfloat16"}));
  app.add_option("--code-width", shape.code_width, "train.code_width: auto, batch or planned")
      ->check(CLI::IsMember({"auto", "batch", "planned"}));
  app.add_option("--steps", steps);
  app.add_option("--penalty", penalty.name, "the penalised job's penalty: absorption or orthogonality")
      ->check(CLI::IsMember({"absorption", "orthogonality"}));
  app.add_option("--pairs", penalty.pairs, "absorption.pairs: candidates or dense")->check(CLI::IsMember({"candidates", "dense"}));
  app.add_option("--tau", penalty.tau, "absorption.dot_threshold");
  app.add_option("--chunk-size", penalty.chunk_size, "orthogonality.chunk_size");
  app.add_option("--device", device, "cpu, or cuda (each rank on GPU local rank mod visible GPUs)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  app.add_option("--threads", threads, "CPU threads per rank (default: the cores shared among this machine's ranks)");
  CLI11_PARSE(app, argc, argv);
  if (device == "cuda" && !torch::cuda::is_available()) {
    std::fprintf(stderr, "sweep_bench: --device cuda, but this LibTorch sees no GPU\n");
    MPI_Finalize();
    return 2;
  }
  run(shape, steps, penalty, device == "cuda", threads);
  MPI_Finalize();
  return 0;
}
