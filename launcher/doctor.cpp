// Times a 2048 x 2048 float32 matmul and reports the threads and BLAS LibTorch is using, and the
// bfloat16 rate beside it (whether train.matmul_dtype = "bfloat16" pays on this CPU).
#include "launcher/doctor.h"

#include <algorithm>
#include <cstdio>
#include <thread>

#include <torch/torch.h>

#include "common/exit_codes.h"
#include "worker/cpu_threads.h"
#include "worker/matmul_rate.h"

namespace sweep::launcher {

int run_doctor() {
  constexpr double kLimitSeconds = 1.0;
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const char* how = worker::use_cpu_threads(threads);  // as a sweep on this machine would

  const double flops = worker::matmul_flops_per_second(torch::kCPU, torch::kFloat, 2048);
  const double seconds = 2.0 * 2048.0 * 2048.0 * 2048.0 / flops;
  std::printf("2048x2048 float matmul: %.3f s (%.1f GFLOP/s), %d CPU thread(s): %s\n", seconds, flops / 1e9, threads,
              how);
  worker::use_cpu_threads(threads, worker::ProductPool::LibTorch);  // as train.matmul_dtype = "bfloat16" would
  const double bf16 = worker::matmul_flops_per_second(torch::kCPU, torch::kBFloat16, 2048);
  std::printf("2048x2048 bfloat16 matmul: %.1f GFLOP/s, %.2fx float's (train.matmul_dtype = \"bfloat16\" pays above 1x)\n",
              bf16 / 1e9, bf16 / flops);
  if (seconds < kLimitSeconds) {
    std::printf("OK: LibTorch uses an optimised BLAS\n");
    return kExitOk;
  }
  std::printf("FAIL: a 2048x2048 matmul must take well under %.0f s. LibTorch is probably using the reference BLAS.\n"
              "HINT: apt-get install libopenblas0-pthread, then check `update-alternatives --display "
              "libblas.so.3-x86_64-linux-gnu` points at openblas-pthread.\n",
              kLimitSeconds);
  return kExitCheckFailed;
}

}  // namespace sweep::launcher
