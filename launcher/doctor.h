// `sweep doctor`: checks that LibTorch's matrix products run on a real BLAS (OpenBLAS), since a
// reference-BLAS fallback makes training ~40x slower. Used by the set-up script.
#pragma once

namespace sweep::launcher {

// Prints the timing of a 2048 x 2048 float matmul; returns 0 if fast enough, 1 otherwise.
int run_doctor();

}  // namespace sweep::launcher
