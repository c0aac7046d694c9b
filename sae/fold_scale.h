// Folding an activation scale into an SAE's weights: the SAE that reads raw activations x, made from
// one trained on rows scaled by `factor` (x' = factor * x, data.normalize = "expected_norm").
// W_enc is multiplied by the factor, W_dec and b_dec divided by it: the codes are the trained SAE's
// on x' (thresholds and TopK unchanged) and the reconstruction is x_hat' / factor. SAELens's
// fold_activation_norm_scaling_factor does the same.
#pragma once

#include <memory>

#include "sae/sae_model.h"

namespace sweep::sae {

// A new SAE on `trained`'s device; `trained` is left as it is.
std::shared_ptr<Sae> fold_activation_scale(const Sae& trained, double factor);

}  // namespace sweep::sae
