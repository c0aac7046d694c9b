// The progress line and bar: step/steps and percent, tokens per second, ETA, loss, L0 and the
// penalty's flagged pairs of the latest logging step.
#include "launcher/progress_display.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include "common/job_state.h"

namespace sweep::launcher {

ProgressDisplay::ProgressDisplay(bool live_bar, double line_every_seconds)
    : live_bar_(live_bar), every_(live_bar ? 0.2 : line_every_seconds) {}

void ProgressDisplay::update(const std::string& label, const JobProgress& p) {
  double now = now_seconds();
  if (label != label_) {  // a new job: its first line after one interval, when it has figures
    label_ = label;
    last_shown_ = now;
  }
  bool last_step = p.step == p.steps;
  if (now - last_shown_ < every_ && !last_step) return;
  last_shown_ = now;
  double fraction = p.steps > 0 ? static_cast<double>(p.step) / static_cast<double>(p.steps) : 0.0;
  auto figures = fmt::format("{}/{} ({:.0f}%) {:.3g} tok/s ETA {} loss {:.4g} L0 {:.1f} flagged pairs {}", p.step,
                             p.steps, 100.0 * fraction, p.tokens_per_second, format_duration(p.eta_seconds), p.loss,
                             p.l0, p.flagged_pairs);
  if (!live_bar_) {
    spdlog::info("[job {}] step {}", label, figures);
    return;
  }
  constexpr int kWidth = 24;
  int filled = static_cast<int>(fraction * kWidth);
  std::fprintf(stderr, "\r\033[K[job %s] [%s%s] %s", label.c_str(), std::string(filled, '#').c_str(),
               std::string(kWidth - filled, '.').c_str(), figures.c_str());
  std::fflush(stderr);
  bar_open_ = true;
  if (last_step) end_line();
}

void ProgressDisplay::end_line() {
  if (!bar_open_) return;
  std::fputc('\n', stderr);
  bar_open_ = false;
}

bool progress_bar_fits(int world_size) {
  return world_size == 1 && ::isatty(STDERR_FILENO) && !std::getenv("SLURM_JOB_ID") &&
         !std::getenv("OMPI_COMM_WORLD_SIZE");
}

}  // namespace sweep::launcher
