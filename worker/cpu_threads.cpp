// Finds OpenBLAS at run time (dlsym), so builds against another BLAS or CUDA still link.
#include "worker/cpu_threads.h"

#include <dlfcn.h>

#include <cstdlib>

#include <torch/torch.h>

#include "sae/cpu_loops.h"

namespace sweep::worker {
namespace {

template <typename Fn>
Fn* openblas_function(const char* name) {
  return reinterpret_cast<Fn*>(dlsym(RTLD_DEFAULT, name));
}

// OpenBLAS's idle threads spin for 2^28 cycles (about 0.1 s) before they sleep, on the cores where
// the sparse step's own loops run between its products (sae/sparse_kernels.h): the relu step at
// d_sae 768 ran at 68-75k tok/s with that, 82-88k with 2^4 to 2^22 (README). So 2^18 cycles, about
// 0.1 ms, unless OPENBLAS_THREAD_TIMEOUT says otherwise. OpenBLAS reads the setting as it starts
// its threads, so they are stopped here and start again at the next product.
void shorten_openblas_spin() {
  auto read_env = openblas_function<void()>("openblas_read_env");
  auto stop_threads = openblas_function<int()>("blas_thread_shutdown_");
  if (!read_env || !stop_threads || std::getenv("OPENBLAS_THREAD_TIMEOUT")) return;
  setenv("OPENBLAS_THREAD_TIMEOUT", "18", 0);
  read_env();
  stop_threads();
}

// Whether the environment gave libgomp at most kMostIdleSpins.
bool openmp_sleeps_soon() {
  const char* spins = std::getenv("GOMP_SPINCOUNT");
  if (!spins) return false;
  char* end = nullptr;
  const double count = std::strtod(spins, &end);
  return end != spins && *end == '\0' && count <= kMostIdleSpins;
}

}  // namespace

const char* use_cpu_threads(int threads, ProductPool products) {
  sae::set_cpu_loop_threads(threads);
  auto openblas_set_num_threads = openblas_function<void(int)>("openblas_set_num_threads");
  if (!openblas_set_num_threads) {
    torch::set_num_threads(threads);
    return "LibTorch threads";
  }
  shorten_openblas_spin();
  const bool blas = products == ProductPool::Blas;
  openblas_set_num_threads(blas ? threads : 1);
  if (!blas) {
    torch::set_num_threads(threads);
    return "LibTorch threads for bfloat16 matrix products (oneDNN), one OpenBLAS thread";
  }
  const bool both = openmp_sleeps_soon();
  torch::set_num_threads(both ? threads : 1);
  return both ? "OpenBLAS threads for matrix products, as many LibTorch threads for the rest (GOMP_SPINCOUNT)"
              : "OpenBLAS threads for matrix products, one LibTorch thread";
}

}  // namespace sweep::worker
