// Times square matrix products, waiting for the device where it runs asynchronously.
#include "worker/matmul_rate.h"

#include <algorithm>
#include <chrono>

#include <torch/cuda.h>

namespace sweep::worker {

double matmul_flops_per_second(torch::Device device, torch::ScalarType dtype, int64_t n) {
  auto options = torch::TensorOptions().device(device).dtype(dtype);
  auto a = torch::randn({n, n}, options), b = torch::randn({n, n}, options);
  auto wait = [&] {
    if (device.is_cuda()) torch::cuda::synchronize(device.index());
  };
  a.mm(b);  // warm-up: thread pool, BLAS and kernel initialisation
  wait();
  double best = 0;
  for (int i = 0; i < 3; ++i) {
    auto start = std::chrono::steady_clock::now();
    a.mm(b);
    wait();
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::max(best, 2.0 * static_cast<double>(n) * n * n / seconds);
  }
  return best;
}

}  // namespace sweep::worker
