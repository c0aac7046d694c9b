// Finds OpenBLAS at run time (dlsym), so builds against another BLAS or CUDA still link.
#include "worker/cpu_threads.h"

#include <dlfcn.h>

#include <torch/torch.h>

namespace sweep::worker {

const char* use_cpu_threads(int threads, ProductPool products) {
  using SetThreads = void (*)(int);
  auto openblas_set_num_threads = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  if (!openblas_set_num_threads) {
    torch::set_num_threads(threads);
    return "LibTorch threads";
  }
  const bool blas = products == ProductPool::Blas;
  openblas_set_num_threads(blas ? threads : 1);
  torch::set_num_threads(blas ? 1 : threads);
  return blas ? "OpenBLAS threads for matrix products, one LibTorch thread"
              : "LibTorch threads for bfloat16 matrix products (oneDNN), one OpenBLAS thread";
}

}  // namespace sweep::worker
