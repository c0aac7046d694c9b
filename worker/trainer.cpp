// The training step: forward on the shard, loss terms as shares of the global-batch loss,
// firing counts summed over the group before the EMAs, averaged gradients, constrained Adam.
#include "worker/trainer.h"

#include <cmath>
#include <stdexcept>

#include "sae/losses.h"

namespace sweep::worker {

Trainer::Trainer(const JobConfig& cfg, Communicator& comm, torch::Device device)
    : cfg_(cfg), comm_(comm), device_(device) {
  state_.model = std::make_shared<sae::Sae>(cfg.sae, cfg.seed);
  state_.model->to(device_);
  double beta1 = cfg.sae.arch == sae::Arch::JumpReLU ? 0.0 : 0.9;
  state_.optimizer = std::make_unique<torch::optim::Adam>(
      state_.model->parameters(),
      torch::optim::AdamOptions(cfg.train.lr).betas(std::make_tuple(beta1, 0.999)).eps(1e-8));
  auto opts = torch::TensorOptions().device(device_).dtype(torch::kFloat);
  if (cfg.absorption.enabled) state_.absorption = sae::AbsorptionStats(cfg.sae.d_sae, cfg.absorption.ema_decay, opts);
  state_.tokens_since_fired = torch::zeros({cfg.sae.d_sae}, opts.dtype(torch::kDouble));
}

double Trainer::learning_rate(int64_t step) const {
  if (cfg_.train.warmup_steps <= 0) return cfg_.train.lr;
  return cfg_.train.lr * std::min(1.0, static_cast<double>(step + 1) / static_cast<double>(cfg_.train.warmup_steps));
}

sae::BatchContext Trainer::batch_context() {
  sae::BatchContext batch;
  batch.global_rows = cfg_.train.batch_size;
  batch.num_shards = comm_.size();
  batch.global_sum = [this](torch::Tensor t) {
    auto summed = t.detach().clone();
    comm_.all_reduce_sum(summed);
    return summed;
  };
  return batch;
}

void Trainer::initialize_decoder_bias(const torch::Tensor& first_shard) {
  torch::NoGradGuard no_grad;
  auto batch = batch_context();
  auto mean = batch.global_sum(first_shard.to(device_).sum(0)) / static_cast<double>(batch.global_rows);
  state_.model->b_dec.copy_(mean);
}

torch::Tensor Trainer::sparsity_loss(const sae::Forward& fwd, const sae::BatchContext& batch) {
  switch (cfg_.sae.arch) {
    case sae::Arch::ReLU: return cfg_.loss.l1_penalty * sae::l1_loss(fwd.f, batch);
    case sae::Arch::JumpReLU: return sae::jumprelu_l0_loss(*state_.model, fwd.pre, batch);
    case sae::Arch::TopK: break;
  }
  return torch::zeros({}, fwd.f.options());
}

void Trainer::average_gradients() {
  if (comm_.size() == 1) return;
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> grads;
  for (auto& p : state_.model->parameters()) {
    if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
    grads.push_back(p.grad().flatten());
  }
  auto flat = torch::cat(grads);
  comm_.all_reduce_sum(flat);
  flat.div_(comm_.size());
  int64_t offset = 0;
  for (auto& p : state_.model->parameters()) {
    p.mutable_grad().copy_(flat.narrow(0, offset, p.numel()).view_as(p));
    offset += p.numel();
  }
}

StepStats Trainer::step(const torch::Tensor& shard_in) {
  auto& model = *state_.model;
  auto x = shard_in.to(device_);
  auto batch = batch_context();
  StepStats stats;
  stats.lr = learning_rate(state_.step);

  auto fwd = model.forward(x);
  auto recon = sae::reconstruction_loss(x, fwd.x_hat, cfg_.loss.recon, batch);
  auto sparse = sparsity_loss(fwd, batch);
  auto aux = torch::zeros({}, x.options());
  if (cfg_.sae.arch == sae::Arch::TopK) {
    auto dead = state_.tokens_since_fired > static_cast<double>(cfg_.sae.dead_after_tokens);
    aux = cfg_.sae.aux_weight * sae::topk_aux_loss(model, fwd.pre, x - fwd.x_hat, dead, batch);
  }
  auto total = recon + sparse + aux;

  // Firing counts of the whole global batch: summed over shards, then the EMA applied once.
  auto counts = sae::count_firing(fwd.f, cfg_.absorption.enabled);
  comm_.all_reduce_sum(counts.buffer);
  {
    torch::NoGradGuard no_grad;
    auto fired = counts.fired().to(torch::kDouble) > 0;
    state_.tokens_since_fired.add_(static_cast<double>(cfg_.train.batch_size)).masked_fill_(fired, 0.0);
  }
  if (cfg_.absorption.enabled) {
    state_.absorption.update(counts, cfg_.train.batch_size);
    auto penalty = sae::absorption_penalty(model.W_dec, state_.absorption, cfg_.absorption);
    total = total + cfg_.absorption.penalty * penalty.loss;
    stats.absorb_loss = penalty.loss.item<double>();
    stats.flagged_pairs = penalty.flagged_pairs;
  }

  // The group's loss: every rank sees the same value, so all of them stop together on NaN.
  stats.loss = (batch.global_sum(total.detach()) / static_cast<double>(comm_.size())).item<double>();
  if (!std::isfinite(stats.loss)) {
    throw std::runtime_error("loss is " + std::to_string(stats.loss) + " at step " + std::to_string(state_.step) +
                             " (lr " + std::to_string(stats.lr) + "): training diverged; lower train.lr");
  }
  // L0 of the global batch follows from the firing counts already summed over the group.
  auto l0 = counts.fired().sum() / static_cast<double>(cfg_.train.batch_size);
  stats.terms = torch::stack({recon.detach(), sparse.detach(), aux.detach(), l0.to(recon.options())});

  state_.optimizer->zero_grad();
  total.backward();
  average_gradients();
  sae::remove_parallel_decoder_grad(model);
  for (auto& group : state_.optimizer->param_groups()) {
    static_cast<torch::optim::AdamOptions&>(group.options()).lr(stats.lr);
  }
  state_.optimizer->step();
  sae::normalize_decoder(model);
  ++state_.step;
  return stats;
}

StepStats reduce_step_stats(const StepStats& local, Communicator& comm) {
  auto t = local.terms.to(torch::kCPU, torch::kDouble).clone();
  comm.all_reduce_sum(t);
  t.div_(comm.size());
  StepStats out = local;
  out.recon = t[0].item<double>();
  out.sparse = t[1].item<double>();
  out.aux = t[2].item<double>();
  out.l0 = t[3].item<double>();
  return out;
}

}  // namespace sweep::worker
