// The constrained Adam step (worker/optimizer_step.h).
#include "worker/optimizer_step.h"

#include <type_traits>

#include "sae/adam_update.h"

namespace sweep::worker {
namespace {

// Optimizer state is keyed by the parameter's TensorImpl: a string in LibTorch 1.x, a pointer in 2.x.
template <typename Key>
Key state_key(const torch::Tensor& param) {
  if constexpr (std::is_same_v<Key, std::string>) {
    return c10::guts::to_string(param.unsafeGetTensorImpl());
  } else {
    return param.unsafeGetTensorImpl();
  }
}

}  // namespace

torch::optim::AdamParamState& adam_state(torch::optim::Adam& optimizer, const torch::Tensor& param) {
  auto& states = optimizer.state();
  auto& slot = states[state_key<typename std::decay_t<decltype(states)>::key_type>(param)];
  if (!slot) {
    auto fresh = std::make_unique<torch::optim::AdamParamState>();
    fresh->exp_avg(torch::zeros_like(param, torch::MemoryFormat::Preserve));
    fresh->exp_avg_sq(torch::zeros_like(param, torch::MemoryFormat::Preserve));
    slot = std::move(fresh);
  }
  return static_cast<torch::optim::AdamParamState&>(*slot);
}

void constrained_adam_step(torch::optim::Adam& optimizer, sae::Sae& sae, double lr) {
  torch::NoGradGuard no_grad;
  auto& options = static_cast<torch::optim::AdamOptions&>(optimizer.param_groups().at(0).options());
  options.lr(lr);
  if (!sae.W_dec.device().is_cpu()) {
    sae::remove_parallel_decoder_grad(sae);
    optimizer.step();
    sae::normalize_decoder(sae);
    return;
  }
  TORCH_CHECK(options.weight_decay() == 0 && !options.amsgrad(), "the CPU's Adam step has no weight decay or amsgrad");
  for (const auto& param : optimizer.param_groups().at(0).params()) {
    if (!param.grad().defined()) continue;  // as LibTorch's Adam
    auto& state = adam_state(optimizer, param);
    state.step(state.step() + 1);
    const sae::AdamStep step{lr, std::get<0>(options.betas()), std::get<1>(options.betas()), options.eps(), state.step()};
    const bool decoder = param.is_same(sae.W_dec);
    (decoder ? sae::unit_rows_adam_update : sae::adam_update)(param, param.grad(), state.exp_avg(),
                                                              state.exp_avg_sq(), step);
  }
}

}  // namespace sweep::worker
