// CPU threads for one rank. LibTorch hands float32 matrix products to BLAS and runs the rest on its
// own OpenMP pool; with OpenBLAS's pthread pool beside it, both spin on the same cores (measured 4x
// slower steps on 2 cores). So for float32 products BLAS gets the rank's share of cores and
// LibTorch's pool one thread. bfloat16 products (train.matmul_dtype) run in LibTorch's oneDNN, on
// LibTorch's pool: then that pool gets the cores and OpenBLAS, left the small float32 products, one.
#pragma once

namespace sweep::worker {

// The pool that runs a job's matrix products.
enum class ProductPool { Blas, LibTorch };

// threads: the cores this rank may use. Returns a one-line description for the log.
const char* use_cpu_threads(int threads, ProductPool products = ProductPool::Blas);

}  // namespace sweep::worker
