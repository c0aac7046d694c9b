// Absorption-penalty activity: device-side sums per step, read back only for checkpoints and the result.
#include "worker/absorption_activity.h"

#include <algorithm>

namespace sweep::worker {

void AbsorptionActivity::add(const StepStats& s) {
  ++steps_;
  refreshes_ += s.refreshed;
  static const int64_t flagged = step_term_index("flagged_pairs"), loss = step_term_index("absorption"),
                       short_history = step_term_index("flagged_short_history");
  auto t = s.terms.to(torch::kDouble);
  auto row = torch::stack({(t[flagged] > 0).to(torch::kDouble), t[flagged], t[loss], t[short_history]});
  if (!sums_.defined()) sums_ = torch::zeros({4}, row.options());
  if (sums_.device() != row.device()) sums_ = sums_.to(row.device());
  sums_.add_(row);
}

nlohmann::json AbsorptionActivity::totals() const {
  auto t = sums_.defined() ? sums_.to(torch::kCPU) : torch::zeros({4}, torch::kDouble);
  return {{"steps", steps_},
          {"active_steps", static_cast<int64_t>(t[0].item<double>())},
          {"pairs", t[1].item<double>()},
          {"loss", t[2].item<double>()},
          {"short_history_pairs", t[3].item<double>()},
          {"refreshes", refreshes_}};
}

nlohmann::json AbsorptionActivity::summary() const {
  auto t = totals();
  double n = static_cast<double>(std::max<int64_t>(1, steps_));
  return {{"absorption_pairs_mean", t["pairs"].get<double>() / n},
          {"absorption_active_fraction", static_cast<double>(t["active_steps"].get<int64_t>()) / n},
          {"absorption_loss_mean", t["loss"].get<double>() / n},
          {"absorption_short_history_pair_steps", t["short_history_pairs"]},
          {"absorption_candidate_refreshes", refreshes_}};
}

AbsorptionActivity AbsorptionActivity::from_totals(const nlohmann::json& j) {
  AbsorptionActivity a;
  a.steps_ = j.at("steps").get<int64_t>();
  a.refreshes_ = j.value("refreshes", int64_t{0});
  a.sums_ = torch::tensor({static_cast<double>(j.at("active_steps").get<int64_t>()), j.at("pairs").get<double>(),
                           j.at("loss").get<double>(), j.value("short_history_pairs", 0.0)},
                          torch::kDouble);
  return a;
}

}  // namespace sweep::worker
