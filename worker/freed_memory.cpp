// glibc's malloc options for a training process: no per-block mappings, no trimming of the heap.
#include "worker/freed_memory.h"

#include <climits>

#ifdef __GLIBC__
#include <malloc.h>
#endif

namespace sweep::worker {

void keep_freed_memory() {
#ifdef __GLIBC__
  mallopt(M_MMAP_MAX, 0);               // no block gets a mapping of its own
  mallopt(M_TRIM_THRESHOLD, INT_MAX);  // the heap's free top is kept, not returned to the kernel
#endif
}

}  // namespace sweep::worker
