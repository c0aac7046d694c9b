// The training step: forward on the shard, loss terms as shares of the global-batch loss,
// firing counts summed over the group before the EMAs, averaged gradients, constrained Adam.
#include "worker/trainer.h"

#include <cmath>
#include <stdexcept>

#include "sae/losses.h"
#include "worker/group_failure.h"

namespace sweep::worker {

Trainer::Trainer(const JobConfig& cfg, Communicator& comm, torch::Device device)
    : cfg_(cfg), group_(comm), journal_(comm), device_(device) {
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
  batch.num_shards = journal_.size();
  batch.global_sum = [this](torch::Tensor t) {
    auto summed = t.detach().clone();
    journal_.all_reduce_sum(summed);
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

torch::Tensor Trainer::average_gradients() {
  if (journal_.size() == 1) return {};
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> grads;
  for (auto& p : state_.model->parameters()) {
    if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
    grads.push_back(p.grad().flatten());
  }
  grads.push_back(torch::zeros({1}, grads.front().options()));  // the failure flag: NaN from a failed rank
  auto flat = torch::cat(grads);
  journal_.all_reduce_sum(flat);
  flat.div_(journal_.size());
  int64_t offset = 0;
  for (auto& p : state_.model->parameters()) {
    p.mutable_grad().copy_(flat.narrow(0, offset, p.numel()).view_as(p));
    offset += p.numel();
  }
  return flat.narrow(0, offset, 1);
}

torch::Tensor Trainer::forward_backward(const torch::Tensor& x, bool rehearsal, StepStats& stats) {
  auto& model = *state_.model;
  auto batch = batch_context();
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
  journal_.all_reduce_sum(counts.buffer);
  if (!rehearsal) {
    torch::NoGradGuard no_grad;
    auto fired = counts.fired().to(torch::kDouble) > 0;
    state_.tokens_since_fired.add_(static_cast<double>(cfg_.train.batch_size)).masked_fill_(fired, 0.0);
  }
  if (cfg_.absorption.enabled) {
    if (!rehearsal) state_.absorption.update(counts, cfg_.train.batch_size);
    auto penalty = sae::absorption_penalty(model.W_dec, state_.absorption, cfg_.absorption);
    total = total + cfg_.absorption.penalty * penalty.loss;
    stats.absorb_loss = penalty.loss.item<double>();
    stats.flagged_pairs = penalty.flagged_pairs;
  }
  auto loss_sum = batch.global_sum(total.detach());
  // L0 of the global batch follows from the firing counts already summed over the group.
  auto l0 = counts.fired().sum() / static_cast<double>(cfg_.train.batch_size);
  stats.terms = torch::stack({recon.detach(), sparse.detach(), aux.detach(), l0.to(recon.options())});

  state_.optimizer->zero_grad();
  total.backward();
  return loss_sum;
}

void Trainer::rehearse_step(const torch::Tensor& shard) {
  agree_on(group_, [&] {
    journal_.rehearse([&] {
      StepStats ignored;
      forward_backward(shard.to(device_), /*rehearsal=*/true, ignored);
      average_gradients();
    });
    for (auto& p : state_.model->parameters()) p.mutable_grad() = torch::Tensor();  // as before it
    return 0;
  });
}

StepStats Trainer::step(const torch::Tensor& shard) {
  const bool grouped = journal_.size() > 1;
  if (grouped && !journal_.knows_step()) rehearse_step(shard);
  StepStats stats;
  stats.lr = learning_rate(state_.step);

  // Up to the gradients' all-reduce, a rank that fails joins the rest of the step's collectives
  // with NaNs; the failure flag in the gradients' buffer then tells every rank.
  torch::Tensor loss_sum, failure_flag;
  std::optional<std::string> local_error;
  journal_.start_step();
  try {
    loss_sum = forward_backward(shard.to(device_), /*rehearsal=*/false, stats);
    failure_flag = average_gradients();
  } catch (const std::exception& e) {
    if (!grouped) throw;
    local_error = e.what();
    journal_.join_rest_of_step();
  }
  journal_.finish_step();
  torch::Tensor readback;  // one device read per step: the group's loss and, in a group, the flag
  if (!local_error) {
    auto loss = loss_sum.reshape({1}) / static_cast<double>(journal_.size());
    readback = (grouped ? torch::cat({loss, failure_flag.to(loss.dtype())}) : loss).to(torch::kCPU, torch::kDouble);
  }
  if (local_error || (grouped && readback[1].item<double>() != 0.0)) {  // NaN != 0 too
    raise_if_any_failed(group_, local_error);
  }
  stats.loss = readback[0].item<double>();
  if (!std::isfinite(stats.loss)) {
    throw GroupFailure("loss is " + std::to_string(stats.loss) + " at step " + std::to_string(state_.step) + " (lr " +
                       std::to_string(stats.lr) + "): training diverged; lower train.lr");
  }

  // After the step's last collective: a failure here is this rank's alone; the caller reports it
  // to the group at the next agreement (failure()), so the ranks still leave the job together.
  try {
    sae::remove_parallel_decoder_grad(*state_.model);
    for (auto& group : state_.optimizer->param_groups()) {
      static_cast<torch::optim::AdamOptions&>(group.options()).lr(stats.lr);
    }
    state_.optimizer->step();
    sae::normalize_decoder(*state_.model);
  } catch (const std::exception& e) {
    if (!grouped) throw;
    failure_ = e.what();
  }
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
