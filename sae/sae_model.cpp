// SAE parameters, initialisation and forward pass (dense, or sparse over a code of active latents) for
// the relu, topk, jumprelu, batchtopk and matryoshka architectures, plus the decoder unit-norm
// constraint applied around each optimiser step.
#include "sae/sae_model.h"

#include "sae/encoder.h"
#include "sae/jumprelu.h"
#include "sae/products.h"

namespace sweep::sae {

const char* arch_name(Arch arch) {
  switch (arch) {
    case Arch::ReLU: return "relu";
    case Arch::TopK: return "topk";
    case Arch::JumpReLU: return "jumprelu";
    case Arch::BatchTopK: return "batchtopk";
    case Arch::Matryoshka: return "matryoshka";
  }
  return "?";
}

std::vector<int64_t> matryoshka_prefixes(const SaeConfig& cfg) {
  auto widths = cfg.matryoshka_widths;
  if (widths.empty() || widths.back() != cfg.d_sae) widths.push_back(cfg.d_sae);
  return widths;
}

Sae::Sae(const SaeConfig& cfg, uint64_t seed) : cfg_(cfg) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  // Decoder rows: random unit directions; encoder starts as the decoder's transpose.
  auto dec = at::randn({cfg.d_sae, cfg.d_in}, gen, torch::kFloat);
  dec = dec / dec.norm(2, 1, true);
  W_enc = register_parameter("W_enc", dec.t().contiguous());
  W_dec = register_parameter("W_dec", dec);
  b_enc = register_parameter("b_enc", torch::zeros({cfg.d_sae}));
  b_dec = register_parameter("b_dec", torch::zeros({cfg.d_in}));
  if (cfg.arch == Arch::JumpReLU) {
    log_threshold = register_parameter(
        "log_threshold", torch::full({cfg.d_sae}, std::log(cfg.init_threshold)));
  }
  if (selects_over_batch(cfg.arch)) batch_threshold = register_buffer("batch_threshold", torch::zeros({1}));
}

torch::Tensor Sae::threshold() const { return log_threshold.exp(); }

torch::Tensor Sae::activate(const torch::Tensor& pre) const {
  switch (cfg_.arch) {
    case Arch::ReLU: return torch::relu(pre);
    case Arch::TopK: {
      auto top = torch::relu(pre).topk(cfg_.k, /*dim=*/1);
      return torch::zeros_like(pre).scatter(1, std::get<1>(top), std::get<0>(top));
    }
    case Arch::JumpReLU: return jumprelu(pre, threshold(), cfg_.bandwidth);
    case Arch::BatchTopK:
    case Arch::Matryoshka: {
      auto f = torch::relu(pre);
      return f * (f > batch_threshold).to(f.scalar_type());
    }
  }
  return pre;
}

namespace {

// The k x B largest activations of the batch (ReLU'd), the rest 0.
torch::Tensor batch_topk(const torch::Tensor& pre, int64_t k) {
  auto flat = torch::relu(pre).flatten();
  auto top = flat.topk(std::min<int64_t>(k * pre.size(0), flat.numel()));
  return torch::zeros_like(flat).scatter(0, std::get<1>(top), std::get<0>(top)).view_as(pre);
}

}  // namespace

torch::Tensor Sae::encode(const torch::Tensor& x) const {
  return activate(encoder_preactivations(x, W_enc, b_enc, b_dec));
}

torch::Tensor Sae::decode(const torch::Tensor& f) const { return product(f, W_dec, MatmulDtype::Float32, b_dec); }

torch::Tensor Sae::threshold_at(const torch::Tensor& idx) const {
  return threshold().index_select(0, idx.reshape({-1})).view_as(idx);
}

torch::Tensor Sae::jumprelu_reach(const torch::Tensor& pre) const {
  torch::NoGradGuard no_grad;
  return torch::relu(pre - (threshold() - cfg_.bandwidth / 2));
}

Forward Sae::run(const torch::Tensor& x, bool training, int64_t code_size) const {
  Forward out;
  const auto products = training ? cfg_.matmul : MatmulDtype::Float32;
  out.pre = encoder_preactivations(x, W_enc, b_enc, b_dec, products);
  if (!training) {
    out.f = activate(out.pre);
    out.x_hat = product(out.f, W_dec, products, b_dec);
    return out;
  }
  // The code's entries, for the trainer's next plan or for this step's own size (kSizeOfTheBatch).
  const bool measured = cfg_.step != StepMode::Dense && cfg_.arch != Arch::TopK;
  const int64_t rows = x.size(0);
  auto size_for = [&](const torch::Tensor& entries) {
    if (code_size != kSizeOfTheBatch) return code_size;
    return code_size_for(cfg_, x.device(), entries.defined() ? entries.item<double>() : 0.0, rows, 1.0);
  };
  int64_t size = cfg_.arch == Arch::TopK || !measured ? size_for({}) : 0;
  ChosenLatents chosen;
  if (cfg_.arch == Arch::TopK && size > 0) {
    torch::NoGradGuard no_grad;  // one top-k gives f and the code's latents
    auto [values, idx] = torch::relu(out.pre).topk(cfg_.k, 1);
    out.f = torch::zeros_like(out.pre).scatter_(1, idx, values);
    chosen = fixed_width_code(idx, values > 0);
  } else if (cfg_.arch == Arch::JumpReLU && measured) {
    // Within reach: active (pre > theta), or close enough below for the threshold's straight-through
    // gradient (pre > theta - bandwidth / 2). The code carries every such entry's pre-activation.
    auto reach = firing(jumprelu_reach(out.pre));
    out.entries = code_entries(reach);
    if ((size = size_for(out.entries)) > 0) {
      chosen = active_entries(reach, size);
      torch::NoGradGuard no_grad;
      out.f = out.pre * (out.pre > threshold()).to(out.pre.scalar_type());
    }
  }
  if (!chosen.idx.defined()) {
    out.f = selects_over_batch(cfg_.arch) ? batch_topk(out.pre, cfg_.k) : activate(out.pre);
    out.fired = firing(out.f);
    if (measured && cfg_.arch != Arch::JumpReLU) size = size_for(out.entries = code_entries(out.fired));
    if (size == 0) {
      out.x_hat = product(out.f, W_dec, products, b_dec);
      return out;
    }
    chosen = active_entries(out.fired, size);
  }
  out.pre = out.pre.detach();
  out.f = out.f.detach();
  out.code = sparse_code(chosen, out.pre, x, W_enc, b_enc, b_dec);
  if (cfg_.arch == Arch::JumpReLU) {  // padding (latent 0) must not reach latent 0's threshold
    out.code.vals = jumprelu(out.code.vals, threshold_at(out.code.idx), cfg_.bandwidth) *
                    out.code.active.to(out.code.vals.scalar_type());
  }
  out.x_hat = sparse_decode(W_dec, out.code) + b_dec;
  return out;
}

Forward Sae::forward(const torch::Tensor& x) const { return run(x, false, 0); }
Forward Sae::forward_train(const torch::Tensor& x, int64_t code_size) const { return run(x, true, code_size); }

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
