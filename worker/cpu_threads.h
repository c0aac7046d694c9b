// CPU threads for one rank. LibTorch hands matrix products to BLAS and runs the rest on its own
// OpenMP pool; with OpenBLAS's pthread pool beside it, both spin on the same cores (measured 4x
// slower steps on 2 cores). So BLAS gets the rank's share of cores and LibTorch's pool one thread.
#pragma once

namespace sweep::worker {

// threads: the cores this rank may use. Returns a one-line description for the log.
const char* use_cpu_threads(int threads);

}  // namespace sweep::worker
