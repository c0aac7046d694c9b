// One job's training state and its training step on this rank's shard of the global batch.
// All cross-rank reductions go through the Communicator, so any group size gives the same step.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include <torch/torch.h>

#include "sae/absorption.h"
#include "sae/batch_context.h"
#include "sae/sae_model.h"
#include "worker/collective_journal.h"
#include "worker/communicator.h"
#include "worker/job_config.h"

namespace sweep::worker {

// Everything needed to continue training exactly: the resume issue saves and restores this.
// (Data order and initialisation are pure functions of the seeds and `step`.)
struct TrainingState {
  std::shared_ptr<sae::Sae> model;
  std::unique_ptr<torch::optim::Adam> optimizer;
  sae::AbsorptionStats absorption;   // undefined tensors when the regulariser is off
  torch::Tensor tokens_since_fired;  // [d_sae] float64, for dead-latent detection
  int64_t step = 0;
};

// Loss terms and activity of one step. The per-term figures stay on the device until a
// logging step asks for them (reduce_step_stats), so ordinary steps read back only the loss.
struct StepStats {
  double loss = 0;             // the group's (same on every rank)
  torch::Tensor terms;         // [recon, sparse, aux] of this shard and the group's L0, detached
  double recon = 0, sparse = 0, aux = 0, l0 = 0;  // filled by reduce_step_stats
  double absorb_loss = 0;      // global (same on every rank)
  int64_t flagged_pairs = 0;   // global
  double lr = 0;
};

class Trainer {
 public:
  Trainer(const JobConfig& cfg, Communicator& comm, torch::Device device);

  // b_dec <- mean of the first global batch (every rank passes its shard of it).
  void initialize_decoder_bias(const torch::Tensor& first_shard);
  // Collective. An error on one rank before the gradients are averaged (a bad shard, out of
  // memory) throws GroupFailure on every rank of the group; later ones throw on that rank only.
  StepStats step(const torch::Tensor& shard);
  // An error this rank met after the step's last collective (say, out of memory in the optimizer):
  // the caller passes it to the group's next agreement.
  const std::optional<std::string>& failure() const { return failure_; }

  TrainingState& state() { return state_; }
  const sae::Sae& model() const { return *state_.model; }
  torch::Device device() const { return device_; }
  double learning_rate(int64_t step) const;

 private:
  sae::BatchContext batch_context();  // sums over the group through the journal
  torch::Tensor sparsity_loss(const sae::Forward& fwd, const sae::BatchContext& batch);
  // Forward, losses and backward; returns the group's loss sum (a tensor: read once, after the
  // gradients). A rehearsal leaves the firing statistics alone.
  torch::Tensor forward_backward(const torch::Tensor& x, bool rehearsal, StepStats& stats);
  // Averages the gradients together with a failure flag (0 from every healthy rank); returns the flag's sum.
  torch::Tensor average_gradients();
  // Before this process's first step in a group: the step's local work once, its collectives
  // recorded but not made, agreed on. A rank short of memory fails the job on every rank instead
  // of hanging them, and the record lets a rank that fails in the first real step join its rest.
  void rehearse_step(const torch::Tensor& x);

  const JobConfig& cfg_;
  Communicator& group_;
  CollectiveJournal journal_;  // over group_: every collective of a step goes through it
  std::optional<std::string> failure_;
  torch::Device device_;
  TrainingState state_;
};

// Reads the step's terms back, averaged over the group (collective; call on logging steps only).
StepStats reduce_step_stats(const StepStats& local, Communicator& comm);

}  // namespace sweep::worker
