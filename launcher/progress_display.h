// Progress of running jobs for people: a live progress bar on a terminal when the sweep runs as
// one process, otherwise plain log lines at a steady interval (mpirun, Slurm, files).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "common/job_progress.h"
#include "report/format.h"

namespace sweep::launcher {

class ProgressDisplay {
 public:
  // live_bar: redraw one line in place on stderr; else a log line every `line_every_seconds`.
  ProgressDisplay(bool live_bar, double line_every_seconds);

  // `label`: the job id and its swept params. Throttled: cheap to call after every step.
  void update(const std::string& label, const JobProgress& progress);
  // Ends the bar's line (before other output, and when the job is over).
  void end_line();

 private:
  bool live_bar_;
  double every_;
  double last_shown_ = 0;
  std::string label_;
  bool bar_open_ = false;
};

// A bar fits a terminal when stderr is one and no launcher (mpirun, Slurm) is involved.
bool progress_bar_fits(int world_size);

}  // namespace sweep::launcher
