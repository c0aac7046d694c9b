// The optimizer step under the decoder's unit-norm constraint, and the Adam state it keeps. LibTorch's
// Adam holds the moments and step counts (what checkpoints save) on every device; on a CPU the
// update itself is sae/adam_update.h's one pass per parameter, on a GPU LibTorch's Adam step between
// the constraint's two halves.
#pragma once

#include <torch/torch.h>

#include "sae/sae_model.h"

namespace sweep::worker {

// A parameter's Adam state, created empty (step 0, zero moments) as Adam itself would.
torch::optim::AdamParamState& adam_state(torch::optim::Adam& optimizer, const torch::Tensor& param);

// Every parameter with a gradient updated at learning rate `lr`; W_dec's gradient loses its part
// along each row first, and its rows are unit again after.
void constrained_adam_step(torch::optim::Adam& optimizer, sae::Sae& sae, double lr);

}  // namespace sweep::worker
