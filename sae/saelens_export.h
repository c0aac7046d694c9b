// The SAELens on-disk format of a trained SAE, as data: cfg.json contents, the tensors of
// sae_weights.safetensors and sparsity.safetensors. Writing the files is the worker's job.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "sae/sae_model.h"

namespace sweep::sae {

// Where the activations came from (SAELens "metadata"); free text for synthetic data.
struct ActivationOrigin {
  std::string model_name = "synthetic";
  std::string hook_name = "synthetic";
  int64_t hook_layer = 0;
  int64_t context_size = 1;
  std::string dataset_path;
};

struct SaeLensExport {
  nlohmann::json cfg;
  std::vector<std::pair<std::string, torch::Tensor>> weights;   // W_enc, W_dec, b_enc, b_dec[, threshold]
  std::vector<std::pair<std::string, torch::Tensor>> sparsity;  // sparsity = log10(freq + 1e-10)
};

// The SAELens version whose on-disk layout the export follows (metadata.sae_lens_version).
inline constexpr const char* kSaeLensFormatVersion = "6.18.0";

SaeLensExport export_saelens(const Sae& sae, const torch::Tensor& firing_frequency,
                             const ActivationOrigin& origin);

}  // namespace sweep::sae
