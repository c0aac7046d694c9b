// SAE parameters, initialisation and forward pass, the activation and training forward left to the
// architecture (sae/architecture.h), plus the pieces of a sparse training step and the decoder
// unit-norm constraint applied around each optimiser step.
#include "sae/sae_model.h"

#include "sae/encoder.h"
#include "sae/products.h"

namespace sweep::sae {

std::vector<int64_t> matryoshka_prefixes(const SaeConfig& cfg) {
  auto widths = cfg.matryoshka_widths;
  if (widths.empty() || widths.back() != cfg.d_sae) widths.push_back(cfg.d_sae);
  return widths;
}

Sae::Sae(const SaeConfig& cfg, uint64_t seed) : cfg_(cfg), arch_(&sae::architecture(cfg.arch)) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  // Decoder rows: random unit directions; encoder starts as the decoder's transpose.
  auto dec = at::randn({cfg.d_sae, cfg.d_in}, gen, torch::kFloat);
  dec = dec / dec.norm(2, 1, true);
  W_enc = register_parameter("W_enc", dec.t().contiguous());
  W_dec = register_parameter("W_dec", dec);
  b_enc = register_parameter("b_enc", torch::zeros({cfg.d_sae}));
  b_dec = register_parameter("b_dec", torch::zeros({cfg.d_in}));
  arch_->add_parameters(*this);
}

torch::Tensor Sae::threshold() const { return log_threshold.exp(); }

torch::Tensor Sae::encode(const torch::Tensor& x) const {
  return arch_->activate(*this, encoder_preactivations(x, W_enc, b_enc, b_dec));
}

torch::Tensor Sae::decode(const torch::Tensor& f) const { return product(f, W_dec, MatmulDtype::Float32, b_dec); }

torch::Tensor Sae::threshold_at(const torch::Tensor& idx) const {
  return threshold().index_select(0, idx.reshape({-1})).view_as(idx);
}

Forward Sae::run(const torch::Tensor& x, bool training, int64_t code_size) const {
  Forward out;
  out.pre = encoder_preactivations(x, W_enc, b_enc, b_dec, training ? cfg_.matmul : MatmulDtype::Float32);
  if (!training) {
    out.f = arch_->activate(*this, out.pre);
    out.x_hat = product(out.f, W_dec, MatmulDtype::Float32, b_dec);
    return out;
  }
  arch_->forward_train(*this, x, code_size, out);
  return out;
}

Forward Sae::forward(const torch::Tensor& x) const { return run(x, false, 0); }
Forward Sae::forward_train(const torch::Tensor& x, int64_t code_size) const { return run(x, true, code_size); }

int64_t step_code_size(const Sae& sae, const torch::Tensor& x, int64_t code_size, const torch::Tensor& entries) {
  if (code_size != kSizeOfTheBatch) return code_size;
  return code_size_for(sae.config(), x.device(), entries.defined() ? entries.item<double>() : 0.0, x.size(0), 1.0);
}

void code_the_chosen(const Sae& sae, const torch::Tensor& x, const ChosenLatents& chosen, Forward& out) {
  out.pre = out.pre.detach();
  out.f = out.f.detach();
  out.code = sparse_code(chosen, out.pre, x, sae.W_enc, sae.b_enc, sae.b_dec);
}

void decode_the_code(const Sae& sae, Forward& out) { out.x_hat = sparse_decode(sae.W_dec, out.code) + sae.b_dec; }

void decode_densely(const Sae& sae, Forward& out) {
  out.x_hat = product(out.f, sae.W_dec, sae.config().matmul, sae.b_dec);
}

// The default training forward: the activations train_activation() keeps, coded where they fire.
void Architecture::forward_train(const Sae& sae, const torch::Tensor& x, int64_t code_size, Forward& out) const {
  const bool measured = sae.config().step != StepMode::Dense;
  int64_t size = measured ? 0 : step_code_size(sae, x, code_size, {});
  out.f = train_activation(sae, out.pre);
  out.fired = firing(out.f);
  if (measured) size = step_code_size(sae, x, code_size, out.entries = code_entries(out.fired));
  if (size == 0) return decode_densely(sae, out);
  code_the_chosen(sae, x, active_entries(out.fired, size), out);
  decode_the_code(sae, out);
}

void remove_parallel_decoder_grad(Sae& sae) {
  torch::NoGradGuard no_grad;
  auto& grad = sae.W_dec.mutable_grad();
  if (!grad.defined()) return;
  auto unit = sae.W_dec / sae.W_dec.norm(2, 1, true);
  grad.sub_((grad * unit).sum(1, true) * unit);
}

void normalize_decoder(Sae& sae) {
  torch::NoGradGuard no_grad;
  sae.W_dec.div_(sae.W_dec.norm(2, 1, true));
}

}  // namespace sweep::sae
