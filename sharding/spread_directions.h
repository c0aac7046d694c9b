// Spreads unit feature directions apart, as SynthSAEBench orthogonalises its dictionary: random
// directions in few dimensions overlap a lot (320 in R^64: mean largest |cosine| 0.38), more than
// the features of a real residual stream. Plain loops, so the result is the same bit for bit
// whatever the thread count.
#pragma once

#include <cstdint>

namespace sweep::sharding {

// `steps` of projected gradient descent on sum_{i != j} (d_i . d_j)^4 over the n unit rows of
// dirs [n, d] (row-major), each step moving every row by 0.01 in its tangent direction (scaled by
// the mean gradient norm) and renormalising it. Cost: 2 n^2 d multiply-adds per step.
void spread_directions(float* dirs, int64_t n, int64_t d, int64_t steps);

}  // namespace sweep::sharding
