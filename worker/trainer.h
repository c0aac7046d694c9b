// One job's training state and its training step on this rank's shard of the global batch.
// A step makes exactly two all-reduces over the group, in this order, whatever the settings:
// the batch statistics the losses need, then [gradients, loss terms, failure flag, each rank's
// code entries]. It is computed again, both all-reduces included, when its one device read
// says the sparse code was cut or the penalty's candidate pairs are due to be found anew.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include <torch/torch.h>

#include "sae/batch_context.h"
#include "sae/penalty.h"
#include "sae/sae_model.h"
#include "worker/communicator.h"
#include "worker/job_config.h"
#include "worker/step_collectives.h"

namespace sweep::worker {

// Everything needed to continue training exactly; checkpoints save and restore it.
// (Data order and initialisation are pure functions of the seeds and `step`.)
struct TrainingState {
  std::shared_ptr<sae::Sae> model;
  std::unique_ptr<torch::optim::Adam> optimizer;
  sae::Penalties penalties;          // a slot per penalty of sae/penalty.h's table, null where off
  torch::Tensor tokens_since_fired;  // [d_sae] float64, for dead-latent detection
  int64_t step = 0;
  int64_t code_size = 0;  // the next step's sparse code entries, 0 for dense (sae::code_size_for)
};

// The named entries of a step's loss-term tensor (StepStats::terms): these, then every penalty's
// activity (sae::penalty_activity_names(), 0 where the penalty is off).
enum StepTerm : int64_t { kLoss, kRecon, kSparse, kAux, kL0, kBaseTerms };
int64_t step_terms_numel();
// Where a penalty's activity value `name` lies in the terms; -1 when no penalty has it.
int64_t step_term_index(const std::string& name);

// One step's figures. The terms are already the group's and stay on the device, so an ordinary
// step reads back only the loss (and the failure and refresh flags, in the same read).
struct StepStats {
  double loss = 0;       // the group's (same on every rank)
  torch::Tensor terms;   // [step_terms_numel()] float, indexed by StepTerm and step_term_index, detached
  bool refreshed = false;  // the penalties were refreshed before this step (candidate pairs found anew)
  int attempts = 1;        // times the step was computed: more than 1 after a cut code or a search
  double lr = 0;
};

// The terms read back (logging steps only: it reads the device).
struct StepTerms {
  double recon = 0, sparse = 0, aux = 0, l0 = 0;
  std::vector<std::pair<std::string, double>> penalties;  // every penalty's activity, by name
  double penalty(const std::string& name) const;           // 0 when absent
};
StepTerms read_step_terms(const StepStats& stats);

class Trainer {
 public:
  Trainer(const JobConfig& cfg, Communicator& comm, torch::Device device);

  // A job starting from step 0: b_dec <- mean of the first global batch (every rank passes its
  // shard of it), and the penalty's candidate pairs found from the initial decoder. Collective.
  void start_fresh(const torch::Tensor& first_shard);
  // Collective. An error on one rank before the gradients are averaged (a bad shard, out of
  // memory) throws GroupFailure on every rank of the group; later ones throw on that rank only.
  StepStats step(const torch::Tensor& shard);
  // An error this rank met after the step's last collective (say, out of memory in the optimizer):
  // the caller passes it to the group's next agreement.
  const std::optional<std::string>& failure() const { return failure_; }

  // The element counts of the step's two all-reduces as things stand (the same on every rank).
  std::vector<int64_t> step_collective_sizes() const;

  TrainingState& state() { return state_; }
  const sae::Sae& model() const { return *state_.model; }
  torch::Device device() const { return device_; }
  double learning_rate(int64_t step) const;

 private:
  sae::BatchContext batch_context() const;
  int64_t gradients_numel() const;
  // What a step reads from the device, in one read.
  struct Readback {
    double loss = 0, failed = 0, search_due = 0, dead_next = 1, entries = 0;
  };
  // The state a step changes before its update, kept so that it can be computed again.
  struct Snapshot {
    torch::Tensor tokens_since_fired, batch_threshold;
    sae::Penalties penalties;  // clones: their updates replace their tensors, so a copy keeps the old ones
  };
  Snapshot snapshot() const;
  void restore(Snapshot saved);
  // One try at the step up to its update, with the step's one device read; `refresh_first`:
  // refresh the penalties first (the absorption penalty's candidate pairs found anew). Raises a rank's failure on the whole group.
  Readback attempt(const torch::Tensor& x, bool refresh_first, StepStats& stats);
  // Forward, statistics (all-reduce 1), losses, backward, gradients and terms (all-reduce 2).
  // Returns the reduced [flag, the most code entries of a rank] (device scalars); the terms go to stats.
  std::pair<torch::Tensor, torch::Tensor> forward_backward(const torch::Tensor& x, StepCollectives& collectives, StepStats& stats);
  void refresh_penalties();

  const JobConfig& cfg_;
  Communicator& group_;
  std::optional<std::string> failure_;
  torch::Device device_;
  TrainingState state_;
  // Sparse codes of the planned size (state_.code_size) rather than the batch's own entries.
  bool planned_sizes_;
  // TopK family: whether a latent may be dead at this step, from the last step's read (true until
  // one says otherwise, as after a resume); the aux loss is skipped when none is.
  bool any_dead_ = true;
  torch::Tensor dead_next_;  // [1] bool on the device: a latent is dead for the next step
  // Per penalty that is off for this job, its activity (zeros) in the step's terms; undefined where on.
  std::vector<torch::Tensor> off_activity_;
};

}  // namespace sweep::worker
