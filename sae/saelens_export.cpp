// Builds the SAELens (v6 layout, with the pre-v6 top-level keys too) cfg.json and the weight
// tensors of an SAE: W_enc [d_in, d_sae], W_dec [d_sae, d_in], b_enc, b_dec, threshold.
#include "sae/saelens_export.h"

namespace sweep::sae {

const char* saelens_architecture(Arch arch) {
  switch (arch) {
    case Arch::ReLU: return "standard";
    case Arch::TopK: return "topk";
    case Arch::JumpReLU: return "jumprelu";
    case Arch::BatchTopK:  // as SAELens saves both for inference: jumprelu with the threshold per latent
    case Arch::Matryoshka: return "jumprelu";
  }
  return "standard";
}

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
      {"architecture", saelens_architecture(c.arch)},
      {"d_in", c.d_in},
      {"d_sae", c.d_sae},
      {"dtype", "float32"},
      {"device", "cpu"},
      {"apply_b_dec_to_input", true},
      {"normalize_activations", "none"},
      {"reshape_activations", "none"},
      {"activation_fn", c.arch == Arch::TopK ? "topk" : "relu"},
      {"metadata", metadata},
  };
  // Pre-v6 readers look for these at the top level.
  for (const auto& key : {"sae_lens_version", "model_name", "hook_name", "hook_layer", "hook_head_index",
                          "context_size", "prepend_bos", "dataset_path"}) {
    out.cfg[key] = metadata[key];
  }
  out.cfg["finetuning_scaling_factor"] = false;
  if (c.arch == Arch::Matryoshka) out.cfg["metadata"]["matryoshka_widths"] = matryoshka_prefixes(c);
  if (c.arch == Arch::TopK) {
    out.cfg["k"] = c.k;
    out.cfg["activation_fn_kwargs"] = {{"k", c.k}};
    // As SAELens's own inference save writes TopK: with decoder rows at unit norm (as they always
    // are here) rescaling by their norms changes nothing, and SAELens may then fold them.
    out.cfg["rescale_acts_by_decoder_norm"] = true;
  }
  out.weights = {{"W_enc", cpu(sae.W_enc)}, {"W_dec", cpu(sae.W_dec)}, {"b_enc", cpu(sae.b_enc)},
                 {"b_dec", cpu(sae.b_dec)}};
  if (c.arch == Arch::JumpReLU) out.weights.emplace_back("threshold", cpu(sae.threshold()));
  if (selects_over_batch(c.arch)) out.weights.emplace_back("threshold", cpu(sae.batch_threshold.expand({c.d_sae})));
  out.sparsity = {{"sparsity", torch::log10(cpu(firing_frequency) + 1e-10)}};
  return out;
}

}  // namespace sweep::sae
