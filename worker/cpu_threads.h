// CPU threads for one rank. LibTorch hands float32 matrix products to BLAS and runs the rest on its
// own OpenMP pool. bfloat16 products (train.matmul_dtype) run in LibTorch's oneDNN, on LibTorch's
// pool: then that pool gets the cores and OpenBLAS, left the small float32 products, one. For
// float32 products BLAS gets the rank's share of cores, and LibTorch's pool one thread: with
// libgomp's default idle spin beside OpenBLAS's pthread pool, both spin on the same cores (measured
// 4x slower steps on 2 cores). Where GOMP_SPINCOUNT is at most kMostIdleSpins in the environment
// (libgomp reads it as the process starts), LibTorch's pool gets the rank's cores too (README).
// The sparse step's own loops get the rank's cores.
#pragma once

namespace sweep::worker {

// The pool that runs a job's matrix products.
enum class ProductPool { Blas, LibTorch };

// The most idle spins of an OpenMP thread at which LibTorch's pool shares the cores with OpenBLAS's.
inline constexpr double kMostIdleSpins = 10000;

// threads: the cores this rank may use. Returns a one-line description for the log.
const char* use_cpu_threads(int threads, ProductPool products = ProductPool::Blas);

}  // namespace sweep::worker
