// Copies every parameter and buffer, then rescales the three that meet the activations.
#include "sae/fold_scale.h"

namespace sweep::sae {

std::shared_ptr<Sae> fold_activation_scale(const Sae& trained, double factor) {
  torch::NoGradGuard no_grad;
  auto folded = std::make_shared<Sae>(trained.config(), 0);
  folded->to(trained.W_enc.device());
  auto source = trained.named_parameters(), target = folded->named_parameters();
  for (const auto& item : source) target[item.key()].copy_(item.value());
  auto source_buffers = trained.named_buffers(), target_buffers = folded->named_buffers();
  for (const auto& item : source_buffers) target_buffers[item.key()].copy_(item.value());
  folded->W_enc.mul_(factor);
  folded->W_dec.div_(factor);
  folded->b_dec.div_(factor);
  return folded;
}

}  // namespace sweep::sae
