// What the CPU loops of sae/ share (sparse_kernels.cpp, adam_update.cpp): the threads they use,
// contiguous pieces of work run one per thread, GCC's eight-float vectors, and the attribute that
// compiles a loop for AVX2 and FMA besides the baseline (the machine picks at load time).
#pragma once

#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SWEEP_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define SWEEP_VECTOR_CLONES
#endif

namespace sweep::sae {

// The threads these loops use (a job's CPU threads, worker::use_cpu_threads). They are threads of
// their own, started per call and joined: LibTorch's OpenMP pool is kept to one thread beside
// OpenBLAS's, whose threads would spin against it.
void set_cpu_loop_threads(int threads);
int cpu_loop_threads();

// A thread's least work, in floats read: starting one costs tens of microseconds.
inline constexpr int64_t kFloatsPerThread = int64_t{1} << 18;

// fn(begin, end) over [0, n) in contiguous pieces, one per thread, the first on the calling thread;
// each of the n items reads about `floats` floats.
template <typename Fn>
void in_pieces(int64_t n, int64_t floats, const Fn& fn) {
  const int64_t pieces = std::clamp<int64_t>(n * floats / kFloatsPerThread, 1, cpu_loop_threads());
  std::vector<std::thread> others;
  for (int64_t p = 1; p < pieces; ++p) others.emplace_back([&, p] { fn(n * p / pieces, n * (p + 1) / pieces); });
  fn(0, n / pieces);
  for (auto& t : others) t.join();
}

// Eight floats, loaded from any float's address: eight AVX2 lanes or two SSE registers.
typedef float Floats8 __attribute__((vector_size(32), aligned(4)));

// a . b over n floats, in four vectors of partial sums: one order of summation whatever the threads.
__attribute__((always_inline)) inline float dot(const float* a, const float* b, int64_t n) {
  constexpr int64_t kPartials = 4;
  Floats8 partial[kPartials] = {};
  int64_t j = 0;
  for (; j + 8 * kPartials <= n; j += 8 * kPartials) {
    for (int64_t k = 0; k < kPartials; ++k) {
      partial[k] += reinterpret_cast<const Floats8*>(a + j)[k] * reinterpret_cast<const Floats8*>(b + j)[k];
    }
  }
  const Floats8 both = (partial[0] + partial[1]) + (partial[2] + partial[3]);
  float sum = 0;
  for (int k = 0; k < 8; ++k) sum += both[k];
  for (; j < n; ++j) sum += a[j] * b[j];
  return sum;
}

}  // namespace sweep::sae
