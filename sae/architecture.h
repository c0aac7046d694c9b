// The interface of an SAE architecture and the table of them by name (sae.arch). An architecture
// is one file under sae/architectures/ plus its line in sae/architectures/registry.cpp.
//
// Its part in a training step (worker/trainer.cpp), in order:
//   1. forward_train(): the activations and, for a sparse step, the code of active latents;
//   2. local_statistics(): its section of the step's first all-reduce (statistics_numel() values),
//      with `carried`, what it computed here that its losses need (JumpReLU's L0 share, with
//      gradient; the TopK family's residual);
//   3. losses(): reconstruction, sparsity and auxiliary terms from the reduced section;
//   4. after_reduction(): updates that follow the group's figures (BatchTopK's inference threshold).
// Evaluation encodes with activate(); the export adds its SAELens fields; its settings' checks run
// on the typed configuration.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "common/setting.h"
#include "sae/batch_context.h"
#include "sae/sae_config.h"

namespace sweep::sae {

class Sae;
struct Forward;
struct SaeLensExport;

// What an architecture's local statistics leave for its losses.
struct ArchShare {
  torch::Tensor section;  // [statistics_numel()] this shard's, no gradient
  torch::Tensor carried;  // what losses() needs of this shard (JumpReLU's L0 share, with gradient; the TopK family's residual)
};

struct ArchLossInputs {
  const Sae& sae;
  const Forward& fwd;
  const torch::Tensor& x;
  const torch::Tensor& section;             // the group's sum of the shards' sections
  const torch::Tensor& carried;             // this shard's ArchShare::carried
  const torch::Tensor& tokens_since_fired;  // [d_sae] float64, before this step
  bool any_dead;                            // the last step's read: some latent may be dead
  const LossConfig& loss;
  const BatchContext& batch;
};

struct ArchLosses {
  torch::Tensor recon, sparse, aux;  // 0-d, this shard's shares; sparse and aux may be undefined (0)
};

class Architecture {
 public:
  virtual ~Architecture() = default;

  // The model: parameters and buffers beyond W_enc, W_dec, b_enc and b_dec.
  virtual void add_parameters(Sae& /*sae*/) const {}
  // Inference (evaluation, export) activations of the pre-activations `pre` [B, d_sae].
  virtual torch::Tensor activate(const Sae& sae, const torch::Tensor& pre) const = 0;
  // A training forward: `out.pre` is set; fills f, x_hat, fired and entries, or the sparse code
  // (Sae::forward_train says what `code_size` means). The default keeps the activations of
  // train_activation() and codes those that fire.
  virtual void forward_train(const Sae& sae, const torch::Tensor& x, int64_t code_size, Forward& out) const;
  // The activations a training step keeps (the default: as inference).
  virtual torch::Tensor train_activation(const Sae& sae, const torch::Tensor& pre) const { return activate(sae, pre); }
  // A sparse code of a fixed size for `rows` rows (0: a dense step), or nullopt where the size
  // follows the batch's entries (sae/sparse_code.h).
  virtual std::optional<int64_t> fixed_code_size(const SaeConfig& /*cfg*/, int64_t /*rows*/) const { return std::nullopt; }
  virtual double adam_beta1() const { return 0.9; }

  // The step.
  virtual int64_t statistics_numel(const SaeConfig& /*cfg*/) const { return 0; }
  virtual ArchShare local_statistics(const Sae& /*sae*/, const Forward& /*fwd*/, const torch::Tensor& /*x*/,
                                     const BatchContext& /*batch*/) const {
    return {};
  }
  virtual ArchLosses losses(const ArchLossInputs& in) const = 0;
  virtual void after_reduction(Sae& /*sae*/, const torch::Tensor& /*section*/, int64_t /*shards*/) const {}
  // A device flag [1]: a latent is dead for the next step's auxiliary loss (undefined: none used).
  virtual torch::Tensor dead_next(const SaeConfig& /*cfg*/, const torch::Tensor& /*tokens_since_fired*/) const { return {}; }

  // Evaluation: the width of its concept level (0: none), whose latents the clamping interventions
  // treat as concepts.
  virtual int64_t concept_width(const SaeConfig& /*cfg*/) const { return 0; }
  // SAELens: cfg.json's "architecture" and "activation_fn", and anything else it adds.
  virtual void export_saelens(const Sae& sae, SaeLensExport& out) const = 0;

  // Checks across settings (k against d_sae, ...): empty when they are fine.
  virtual std::vector<SettingProblem> check(const SaeConfig& /*cfg*/) const { return {}; }
};

// One row of the architecture table.
struct ArchitectureEntry {
  std::string name;  // sae.arch
  // The settings of its own (only some architectures read them), declared here once: key, type,
  // default, check and help (the sweep-file schema takes them from here; two architectures may
  // declare the same row, as the TopK family does). A grid axis over one of them is left out of
  // the jobs of architectures that do not read it.
  std::vector<Setting> settings;
  std::function<std::unique_ptr<Architecture>()> make;
  // Settings declared by other architectures that this one reads too.
  std::vector<std::string> also_reads = {};
};

const std::vector<ArchitectureEntry>& architectures();
// Adds an architecture (tests; the built-in ones are listed in sae/architectures/registry.cpp).
// Throws std::invalid_argument for a name already there.
void register_architecture(ArchitectureEntry entry);
// The architecture named `name`; throws std::invalid_argument for an unknown name.
const Architecture& architecture(const std::string& name);
std::vector<std::string> architecture_names();

}  // namespace sweep::sae
