// Times a 2048 x 2048 float32 matmul and reports the threads and BLAS LibTorch is using.
#include "launcher/doctor.h"

#include <chrono>
#include <cstdio>

#include <torch/torch.h>

namespace sweep::launcher {

int run_doctor() {
  constexpr double kLimitSeconds = 1.0;
  auto a = torch::randn({2048, 2048});
  auto b = torch::randn({2048, 2048});
  a.mm(b);  // warm-up: thread pool and BLAS initialisation
  auto start = std::chrono::steady_clock::now();
  a.mm(b);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("2048x2048 float matmul: %.3f s (%.1f GFLOP/s) on %d threads\n", seconds,
              2.0 * 2048.0 * 2048.0 * 2048.0 / seconds / 1e9, torch::get_num_threads());
  if (seconds < kLimitSeconds) {
    std::printf("OK: LibTorch uses an optimised BLAS\n");
    return 0;
  }
  std::printf("FAIL: a 2048x2048 matmul must take well under %.0f s. LibTorch is probably using the reference BLAS.\n"
              "HINT: apt-get install libopenblas0-pthread, then check `update-alternatives --display "
              "libblas.so.3-x86_64-linux-gnu` points at openblas-pthread.\n",
              kLimitSeconds);
  return 1;
}

}  // namespace sweep::launcher
