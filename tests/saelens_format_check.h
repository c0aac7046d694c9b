// An independent check of the SAELens on-disk format, written from what SAELens v6's
// SAE.load_from_disk needs rather than from sweep's own exporter, so the tests can tell
// whether an exported directory would load.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace sweep::testing {

// Every way `sae_dir` fails to be a loadable SAELens (v6) SAE directory; empty when it passes.
//  - cfg.json parses; "architecture" is "standard", "topk" or "jumprelu"; d_in and d_sae are
//    positive integers; dtype "float32"; device a string; apply_b_dec_to_input a bool;
//    normalize_activations "none"; "metadata" an object with sae_lens_version >= 6 and string
//    hook_name and model_name; topk also needs an integer "k" in [1, d_sae].
//  - sae_weights.safetensors holds exactly W_enc [d_in, d_sae], W_dec [d_sae, d_in],
//    b_enc [d_sae], b_dec [d_in] (plus threshold [d_sae] for jumprelu), all F32 and finite,
//    and the rows of W_dec have unit norm (within 1e-4), or 1 / metadata's
//    activation_norm_scaling_factor where one was folded into the weights.
//  - sparsity.safetensors holds "sparsity" [d_sae] F32, log10 firing frequencies in [-10, 0].
std::vector<std::string> saelens_problems(const std::filesystem::path& sae_dir);

}  // namespace sweep::testing
