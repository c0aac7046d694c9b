// Builds the SAELens (v6 layout, with the pre-v6 top-level keys too) cfg.json and the weight
// tensors of an SAE: W_enc [d_in, d_sae], W_dec [d_sae, d_in], b_enc, b_dec; its architecture adds
// the rest (cfg.json's architecture and activation_fn, a threshold).
#include "sae/saelens_export.h"

namespace sweep::sae {

SaeLensExport export_saelens(const Sae& sae, const torch::Tensor& firing_frequency,
                             const ActivationOrigin& origin) {
  torch::NoGradGuard no_grad;
  const auto& c = sae.config();
  auto cpu = [](const torch::Tensor& t) { return t.detach().to(torch::kCPU, torch::kFloat).contiguous(); };
  SaeLensExport out;
  // sae_lens_version names the SAELens whose loader this layout follows (SAELens 6.18 loads these
  // files); SAELens did not train them, so sae_lens_training_version is null, as SAELens's own
  // loaders write for SAEs trained elsewhere. The worker adds the tool's own version.
  nlohmann::json metadata = {
      {"sae_lens_version", kSaeLensFormatVersion}, {"sae_lens_training_version", nullptr},
      {"model_name", origin.model_name},   {"hook_name", origin.hook_name},
      {"hook_layer", origin.hook_layer},   {"hook_head_index", nullptr},
      {"context_size", origin.context_size}, {"prepend_bos", true},
      {"dataset_path", origin.dataset_path},
  };
  out.cfg = {
      {"d_in", c.d_in},
      {"d_sae", c.d_sae},
      {"dtype", "float32"},
      {"device", "cpu"},
      {"apply_b_dec_to_input", true},
      {"normalize_activations", "none"},
      {"reshape_activations", "none"},
      {"metadata", metadata},
  };
  // Pre-v6 readers look for these at the top level.
  for (const auto& key : {"sae_lens_version", "model_name", "hook_name", "hook_layer", "hook_head_index",
                          "context_size", "prepend_bos", "dataset_path"}) {
    out.cfg[key] = metadata[key];
  }
  out.cfg["finetuning_scaling_factor"] = false;
  out.weights = {{"W_enc", cpu(sae.W_enc)}, {"W_dec", cpu(sae.W_dec)}, {"b_enc", cpu(sae.b_enc)},
                 {"b_dec", cpu(sae.b_dec)}};
  sae.architecture().export_saelens(sae, out);  // its architecture, activation and thresholds
  out.sparsity = {{"sparsity", torch::log10(cpu(firing_frequency) + 1e-10)}};
  return out;
}

}  // namespace sweep::sae
