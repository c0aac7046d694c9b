// relu: f = ReLU(pre), sparsity from an L1 penalty (train.l1_penalty) on the activations.
// Exported as SAELens's "standard" SAE.
#include "sae/architecture.h"
#include "sae/losses.h"
#include "sae/saelens_export.h"

namespace sweep::sae {
namespace {

class Relu final : public Architecture {
 public:
  torch::Tensor activate(const Sae& /*sae*/, const torch::Tensor& pre) const override { return torch::relu(pre); }

  ArchLosses losses(const ArchLossInputs& in) const override {
    return {reconstruction_loss(in.x, in.fwd.x_hat, in.loss.recon, in.batch),
            in.loss.l1_penalty * l1_loss(in.fwd.sparse() ? in.fwd.code.vals : in.fwd.f, in.batch),
            {}};
  }

  void export_saelens(const Sae& /*sae*/, SaeLensExport& out) const override {
    out.cfg["architecture"] = "standard";
    out.cfg["activation_fn"] = "relu";
  }
};

}  // namespace

ArchitectureEntry relu_architecture() {
  using namespace setting_checks;
  return {"relu",
          {field("train.l1_penalty", &LossConfig::l1_penalty, at_least(0), "relu: L1 weight")},
          [] { return std::make_unique<Relu>(); }};
}

}  // namespace sweep::sae
