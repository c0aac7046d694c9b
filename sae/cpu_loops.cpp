// The thread count that the CPU loops of sae/ split their work over (sae/cpu_loops.h).
#include "sae/cpu_loops.h"

#include <atomic>

namespace sweep::sae {
namespace {

std::atomic<int> loop_threads{1};

}  // namespace

void set_cpu_loop_threads(int threads) { loop_threads = std::max(1, threads); }
int cpu_loop_threads() { return loop_threads.load(); }

}  // namespace sweep::sae
