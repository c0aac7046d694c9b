// OrtSAE's chunked orthogonality penalty: a random permutation per step, cut into near-equal chunks,
// each chunk's Gram matrix of unit decoder rows (batched) with its diagonal masked, the largest
// square per row.
#include "sae/penalties/orthogonality.h"

#include <algorithm>

#include "sae/sae_model.h"

namespace sweep::sae {
namespace {

class OrthogonalityPenalty final : public Penalty {
 public:
  OrthogonalityPenalty(double weight, int64_t chunk_size, int64_t d_sae, uint64_t seed)
      : weight_(weight), chunk_size_(chunk_size), d_sae_(d_sae), seed_(seed) {}

  std::unique_ptr<Penalty> clone() const override { return std::make_unique<OrthogonalityPenalty>(*this); }

  PenaltyLoss loss(const Sae& sae, const torch::Tensor& /*fired*/, const torch::Tensor& /*section*/,
                   int64_t /*global_rows*/, int64_t step) override {
    auto order = orthogonality_order(d_sae_, seed_, step).to(sae.W_dec.device());
    auto loss = orthogonality_loss(sae.W_dec, order, chunk_size_);
    return {weight_ * loss, loss.detach().reshape({1})};
  }

 private:
  double weight_;
  int64_t chunk_size_, d_sae_;
  uint64_t seed_;
};

}  // namespace

torch::Tensor orthogonality_order(int64_t d_sae, uint64_t seed, int64_t step) {
  // A generator of its own, so that no other draw of the job shifts it (nor it them).
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(step) + 1);
  return torch::randperm(d_sae, gen, torch::TensorOptions().dtype(torch::kLong));
}

torch::Tensor orthogonality_loss(const torch::Tensor& W_dec, const torch::Tensor& order, int64_t chunk_size) {
  const int64_t d_sae = W_dec.size(0), d_in = W_dec.size(1);
  const int64_t chunks = std::max<int64_t>(1, (d_sae + chunk_size - 1) / chunk_size);
  // Near-equal chunks of the permuted rows: the first d_sae % chunks hold one latent more. Each
  // group of equal chunks is one batched product (a product per chunk would pay the gather's
  // backward, a whole [d_sae, d_in] gradient, once per chunk).
  const int64_t size = d_sae / chunks, larger = d_sae % chunks;
  auto rows = W_dec.index_select(0, order);
  auto total = torch::zeros({}, W_dec.options());
  auto add_chunks = [&](int64_t first_row, int64_t count, int64_t latents) {
    if (count == 0 || latents < 2) return;  // a latent alone in its chunk has no other to be parallel to
    auto block = rows.narrow(0, first_row, count * latents).view({count, latents, d_in});
    auto diagonal = torch::eye(latents, rows.options().dtype(torch::kBool));
    auto squares = torch::bmm(block, block.transpose(1, 2)).pow(2).masked_fill(diagonal, -1.0);
    total = total + std::get<0>(squares.max(2)).sum();
  };
  add_chunks(0, larger, size + 1);
  add_chunks(larger * (size + 1), chunks - larger, size);
  return total / static_cast<double>(d_sae);
}

PenaltyEntry orthogonality_penalty_entry() {
  using namespace setting_checks;
  return {"orthogonality",
          "orthogonality",
          "orthogonality.penalty",
          0.0,
          {{"orthogonality.penalty", ValueKind::Float, 0.0, at_least(0),
            "OrtSAE's orthogonality penalty: weight of the mean over latents of each one's largest squared decoder "
            "cosine with another latent of its random chunk (0: off)",
            true, true},
           {"orthogonality.chunk_size", ValueKind::Int, 1024, at_least(2),
            "latents per random chunk of the orthogonality penalty, drawn anew every step (its cost: d_sae x "
            "chunk_size x d_in multiply-adds a step)",
            true, true}},
          {"orthogonality"},
          [](const PenaltyContext& c) -> std::unique_ptr<Penalty> {
            const double weight = c.settings.is_object() ? c.settings.value("orthogonality.penalty", 0.0) : 0.0;
            if (weight == 0.0) return nullptr;
            return std::make_unique<OrthogonalityPenalty>(weight, c.settings.at("orthogonality.chunk_size").get<int64_t>(),
                                                          c.d_sae, c.seed);
          }};
}

}  // namespace sweep::sae
