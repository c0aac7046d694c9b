// Finds OpenBLAS at run time (dlsym), so builds against another BLAS or CUDA still link.
#include "worker/cpu_threads.h"

#include <dlfcn.h>

#include <torch/torch.h>

namespace sweep::worker {

const char* use_cpu_threads(int threads) {
  using SetThreads = void (*)(int);
  auto openblas_set_num_threads = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  if (openblas_set_num_threads) {
    openblas_set_num_threads(threads);
    torch::set_num_threads(1);
    return "OpenBLAS threads for matrix products, one LibTorch thread";
  }
  torch::set_num_threads(threads);
  return "LibTorch threads";
}

}  // namespace sweep::worker
