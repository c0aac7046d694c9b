// Freed memory kept in the process for the next step. glibc gives every large block (a step's
// [B, d_sae] temporaries, tens of MiB) a mapping of its own and unmaps it when it is freed, so the
// next step's block of the same size starts as untouched pages and pays a page fault per 4 KiB.
// Measured at d_sae 16384 (d_in 256, batch 1024, relu, 2 cores): a step of 618 ms without this,
// 434-454 ms with it. The price is peak memory: the heap keeps what fragmentation leaves, 1.01 ->
// 1.15 GiB there and 2.84 -> 4.10 GiB at d_sae 65536 (bench/run_benchmarks).
#pragma once

namespace sweep::worker {

// Large blocks come from the heap instead, and the heap keeps what is freed. Call once, early.
void keep_freed_memory();

}  // namespace sweep::worker
