// The training step, to be read top to bottom with both of its collectives in sight: forward on
// the shard over a sparse code of the planned size; the batch statistics summed over the group;
// the losses and the penalty from them; backward; the gradients averaged together with the loss
// terms, a failure flag and the ranks' code entries; one device read; computed again from the
// state before it if the code was cut or the penalty's candidate pairs are due to be found anew
// (the drift bound, computed on the weights as the step found them); constrained Adam.
#include "worker/trainer.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "sae/batch_statistics.h"
#include "worker/group_failure.h"
#include "worker/optimizer_step.h"

namespace sweep::worker {

Trainer::Trainer(const JobConfig& cfg, Communicator& comm, torch::Device device)
    : cfg_(cfg), group_(comm), device_(device),
      planned_sizes_(cfg.sae.code_sizes == sae::CodeSizes::Planned ||
                     (cfg.sae.code_sizes == sae::CodeSizes::Auto && !device.is_cpu())) {
  state_.model = std::make_shared<sae::Sae>(cfg.sae, cfg.seed);
  state_.model->to(device_);
  double beta1 = state_.model->architecture().adam_beta1();
  state_.optimizer = std::make_unique<torch::optim::Adam>(
      state_.model->parameters(),
      torch::optim::AdamOptions(cfg.train.lr).betas(std::make_tuple(beta1, 0.999)).eps(1e-8));
  auto opts = torch::TensorOptions().device(device_).dtype(torch::kFloat);
  state_.penalties = sae::make_penalties({cfg.resolved, cfg.absorption, cfg.sae.d_sae, cfg.seed, opts});
  for (size_t i = 0; i < state_.penalties.size(); ++i) {
    const auto width = static_cast<int64_t>(sae::penalties()[i].activity.size());
    off_activity_.push_back(state_.penalties[i] ? torch::Tensor() : torch::zeros({width}, opts));
  }
  state_.tokens_since_fired = torch::zeros({cfg.sae.d_sae}, opts.dtype(torch::kDouble));
  state_.code_size = sae::first_code_size(cfg.sae, cfg.train.batch_size / comm.size());  // this rank's rows
}

double Trainer::learning_rate(int64_t step) const {
  if (cfg_.train.warmup_steps <= 0) return cfg_.train.lr;
  return cfg_.train.lr * std::min(1.0, static_cast<double>(step + 1) / static_cast<double>(cfg_.train.warmup_steps));
}

sae::BatchContext Trainer::batch_context() const { return {cfg_.train.batch_size, group_.size()}; }

int64_t step_terms_numel() { return kBaseTerms + static_cast<int64_t>(sae::penalty_activity_names().size()); }

int64_t step_term_index(const std::string& name) {
  const auto& names = sae::penalty_activity_names();
  auto it = std::find(names.begin(), names.end(), name);
  return it == names.end() ? -1 : kBaseTerms + (it - names.begin());
}

int64_t Trainer::gradients_numel() const {
  int64_t n = step_terms_numel() + 1 + 2 * group_.size();  // the terms, the failure flag and the ranks' code entries travel with the gradients
  for (const auto& p : state_.model->parameters()) n += p.numel();
  return n;
}

std::vector<int64_t> Trainer::step_collective_sizes() const {
  return {sae::statistics_layout(cfg_.sae, state_.penalties).numel(), gradients_numel()};
}

void Trainer::start_fresh(const torch::Tensor& first_shard) {
  {
    torch::NoGradGuard no_grad;
    auto sum = first_shard.to(device_).sum(0);
    group_.all_reduce_sum(sum);
    state_.model->b_dec.copy_(sum / static_cast<double>(cfg_.train.batch_size));
  }
  agree_on(group_, [&] {
    refresh_penalties();
    return 0;
  });
}

void Trainer::refresh_penalties() {
  for (auto& penalty : state_.penalties) {
    if (!penalty) continue;
    auto note = penalty->refresh(state_.model->W_dec);
    if (!note.empty() && group_.is_leader()) spdlog::warn("[job {}] {}", cfg_.id, note);
  }
}

std::pair<torch::Tensor, torch::Tensor> Trainer::forward_backward(const torch::Tensor& x, StepCollectives& collectives,
                                                                  StepStats& stats) {
  auto& model = *state_.model;
  const auto batch = batch_context();
  const auto rows = static_cast<double>(cfg_.train.batch_size);
  auto fwd = model.forward_train(x, planned_sizes_ ? state_.code_size : sae::kSizeOfTheBatch);
  const auto& arch = model.architecture();

  // All-reduce 1: everything the losses need from the whole global batch.
  auto global = sae::local_statistics(model, fwd, x, state_.penalties, batch);
  collectives.all_reduce_sum(global.buffer);

  auto zero = torch::zeros({}, x.options());
  auto terms_of_arch = arch.losses({model, fwd, x, global.arch_section(), global.carried, state_.tokens_since_fired,
                                    any_dead_, cfg_.loss, batch});
  auto recon = terms_of_arch.recon;
  auto sparse = terms_of_arch.sparse.defined() ? terms_of_arch.sparse : zero;
  auto aux = terms_of_arch.aux.defined() ? terms_of_arch.aux : zero;
  {
    torch::NoGradGuard no_grad;
    auto fired = global.fired().to(torch::kDouble) > 0;
    state_.tokens_since_fired = (state_.tokens_since_fired + rows).masked_fill_(fired, 0.0);  // a new tensor: snapshot()
    dead_next_ = arch.dead_next(cfg_.sae, state_.tokens_since_fired);
    arch.after_reduction(model, global.arch_section(), group_.size());
  }
  auto total = recon + sparse + aux;
  std::vector<torch::Tensor> activity;  // every penalty's, in the table's order (0 where it is off)
  for (size_t i = 0; i < state_.penalties.size(); ++i) {
    auto& penalty = state_.penalties[i];
    if (!penalty) {
      activity.push_back(off_activity_[i]);
      continue;
    }
    auto term = penalty->loss(model, global.fired(), global.penalty_section(i), cfg_.train.batch_size, state_.step);
    total = total + term.loss;
    activity.push_back(term.activity.to(x.scalar_type()));
  }
  auto l0 = global.fired().sum() / rows;  // of the global batch, from the summed firing counts
  auto terms = torch::cat({torch::stack({total.detach(), recon.detach(), sparse.detach(), aux.detach(), l0}),
                           torch::cat(activity)});
  // The gradients start undefined, so that backward's own tensors become them (a zeroed gradient
  // would be added to); a parameter left without one gets zeros, as Adam steps every parameter.
  for (auto& p : model.parameters()) p.mutable_grad() = torch::Tensor();
  total.backward();
  for (auto& p : model.parameters()) {
    if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
  }

  // All-reduce 2: the gradients, the terms, the failure flag (0 here, NaN from a failed rank) and
  // this rank's code entries in its own two slots, as 2^16s and the rest so that float32 carries
  // them exactly (the group plans for the largest).
  torch::NoGradGuard no_grad;
  auto flag = torch::zeros({1}, terms.options());
  auto entries = fwd.entries.defined() ? fwd.entries.detach().reshape({1}) : torch::zeros({1}, terms.options().dtype(torch::kDouble));
  if (group_.size() == 1) {
    stats.terms = terms;
    return {flag, entries};
  }
  constexpr double kSplit = 65536;
  std::vector<torch::Tensor> parts;
  for (auto& p : model.parameters()) parts.push_back(p.grad().flatten());
  parts.push_back(terms);
  parts.push_back(flag);
  auto slots = torch::zeros({group_.size(), 2}, terms.options());
  slots[group_.rank()].copy_(torch::cat({(entries / kSplit).floor(), entries.remainder(kSplit)}));
  parts.push_back(slots.flatten());
  auto flat = torch::cat(parts);
  collectives.all_reduce_sum(flat);
  const int64_t n_terms = terms.numel(), terms_at = flat.numel() - 1 - 2 * group_.size() - n_terms;
  flat.narrow(0, 0, terms_at + n_terms).div_(group_.size());  // gradients and terms: the group's mean
  int64_t offset = 0;
  for (auto& p : model.parameters()) {
    p.mutable_grad().copy_(flat.narrow(0, offset, p.numel()).view_as(p));
    offset += p.numel();
  }
  stats.terms = flat.narrow(0, terms_at, n_terms);
  auto counts = flat.narrow(0, terms_at + n_terms + 1, 2 * group_.size()).view({group_.size(), 2}).to(torch::kDouble);
  return {flat.narrow(0, terms_at + n_terms, 1), (counts.select(1, 0) * kSplit + counts.select(1, 1)).max().reshape({1})};
}

Trainer::Snapshot Trainer::snapshot() const {
  auto threshold = state_.model->batch_threshold;
  return {state_.tokens_since_fired, threshold.defined() ? threshold.clone() : threshold,
          sae::clone_penalties(state_.penalties)};
}

void Trainer::restore(Snapshot saved) {
  torch::NoGradGuard no_grad;
  state_.tokens_since_fired = saved.tokens_since_fired;
  if (saved.batch_threshold.defined()) state_.model->batch_threshold.copy_(saved.batch_threshold);
  state_.penalties = std::move(saved.penalties);
}

Trainer::Readback Trainer::attempt(const torch::Tensor& x, bool refresh_first, StepStats& stats) {
  const bool grouped = group_.size() > 1;
  if (refresh_first) {  // the statistics' size may follow a refresh: the group agrees on it first
    agree_on(group_, [&] {
      refresh_penalties();
      return 0;
    });
  }
  StepCollectives collectives(group_, step_collective_sizes(), torch::TensorOptions().device(device_).dtype(torch::kFloat));
  torch::Tensor failure_flag, entries, search_due;
  std::optional<std::string> local_error;
  try {
    // Whether a penalty must refresh first, on the weights the step starts from (the absorption
    // penalty's drift bound: whether its candidates are still complete).
    search_due = torch::zeros({1}, torch::TensorOptions().device(device_).dtype(torch::kFloat));
    for (const auto& penalty : state_.penalties) {
      auto due = penalty ? penalty->refresh_due(state_.model->W_dec) : torch::Tensor();
      if (due.defined()) search_due = torch::maximum(search_due, due.to(torch::kFloat).reshape({1}));
    }
    std::tie(failure_flag, entries) = forward_backward(x, collectives, stats);
  } catch (const std::exception& e) {
    if (!grouped) throw;
    local_error = error_text(e);
    collectives.make_rest_with_nan();  // the group finishes the step and sees the flag
  }
  if (local_error) raise_if_any_failed(group_, local_error);

  // The step's one device read: the group's loss, the failure flag, the search flag, whether a
  // latent is dead for the next step's auxiliary loss, and the most code entries of a rank.
  auto dead_next = dead_next_.defined() ? dead_next_.to(torch::kFloat) : torch::ones_like(search_due);
  std::vector<torch::Tensor> values{stats.terms.narrow(0, kLoss, 1), failure_flag, search_due, dead_next, entries};
  for (auto& v : values) v = v.to(torch::kDouble);  // the entries are float64 already, and exact
  auto read = torch::cat(values).to(torch::kCPU);
  auto at = [&](int64_t i) { return read[i].item<double>(); };
  Readback out{at(0), at(1), at(2), at(3), at(4)};
  if (out.failed != 0.0) raise_if_any_failed(group_, std::nullopt);  // NaN != 0 too
  return out;
}

StepStats Trainer::step(const torch::Tensor& shard) {
  const bool grouped = group_.size() > 1;
  StepStats stats;
  stats.lr = learning_rate(state_.step);
  const auto x = shard.to(device_);
  Readback read;
  for (bool search = false;; ++stats.attempts) {
    auto before = snapshot();
    read = attempt(x, search, stats);
    const bool cut = planned_sizes_ && state_.code_size > 0 && !(read.entries <= static_cast<double>(state_.code_size));
    search = read.search_due != 0.0 && !stats.refreshed;
    if (!cut && !search) break;
    // Computed again from the state before it: with the candidates found anew, or over a code of
    // exactly its entries (dense where auto finds them too many).
    restore(std::move(before));
    stats.refreshed = stats.refreshed || search;
    // (A second cut could only come from a forward that differs from itself: then dense.)
    if (cut) state_.code_size = stats.attempts == 1 ? sae::code_size_for(cfg_.sae, device_, read.entries, x.size(0), 1.0) : 0;
  }
  stats.loss = read.loss;
  if (!std::isfinite(stats.loss)) {
    const auto at = "loss is " + std::to_string(stats.loss) + " at step " + std::to_string(state_.step);
    // Activations whose squares overflow float32 give an infinite loss whatever the learning rate
    // (read on this failure only; the group's loss may come from another rank's rows).
    const double largest = x.abs().max().item<double>();
    if (largest * largest * static_cast<double>(x.size(1)) > std::numeric_limits<float>::max()) {
      throw GroupFailure(at + ": this rank's activations reach |x| = " + std::to_string(largest) +
                         ", whose squares overflow float32; scale the activations down (normalise them) or check the data");
    }
    throw GroupFailure(at + " (lr " + std::to_string(stats.lr) + "): training diverged; lower train.lr");
  }
  any_dead_ = read.dead_next != 0.0;
  state_.code_size = sae::code_size_for(cfg_.sae, device_, read.entries, x.size(0), sae::kCodeHeadroom);

  // After the last collective a failure is this rank's alone: the caller passes it to the group's
  // next agreement (failure()), so the ranks still leave the job together.
  try {
    constrained_adam_step(*state_.optimizer, *state_.model, stats.lr);
  } catch (const std::exception& e) {
    if (!grouped) throw;
    failure_ = error_text(e);
  }
  ++state_.step;
  return stats;
}

StepTerms read_step_terms(const StepStats& stats) {
  auto t = stats.terms.to(torch::kCPU, torch::kDouble);
  auto at = [&](int64_t i) { return t[i].item<double>(); };
  StepTerms out{at(kRecon), at(kSparse), at(kAux), at(kL0), {}};
  int64_t i = kBaseTerms;
  for (const auto& name : sae::penalty_activity_names()) out.penalties.emplace_back(name, at(i++));
  return out;
}

double StepTerms::penalty(const std::string& name) const {
  for (const auto& [n, value] : penalties) {
    if (n == name) return value;
  }
  return 0.0;
}

}  // namespace sweep::worker
