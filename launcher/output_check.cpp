// Output directory checks: a probe file written and removed, and an estimate of the bytes the
// remaining jobs will write, compared with the free space of the file system.
#include "launcher/output_check.h"

#include <algorithm>

#include "common/byte_size.h"
#include "config/config_error.h"
#include "config/job_settings.h"
#include "worker/checkpoint.h"
#include "worker/job_files.h"

namespace sweep::launcher {

std::filesystem::path output_directory(const std::optional<std::filesystem::path>& out, const SweepSpec& spec) {
  auto dir = out.value_or(std::filesystem::path("runs") / spec.name).lexically_normal();
  return dir.has_filename() ? dir : dir.parent_path();  // "DIR/" is DIR
}

void check_writable(const std::filesystem::path& out) {
  try {
    std::filesystem::create_directories(out / "jobs");
    auto probe = out / ".write-check";
    write_file_atomic(probe, "ok\n");
    std::filesystem::remove(probe);
  } catch (const std::exception& e) {
    throw ConfigError(out.string() + ": the output directory cannot be written (" + e.what() +
                      "); choose another with --out");
  }
}

double bytes_needed(const std::vector<PlannedJob>& jobs_to_run, const std::vector<int64_t>& d_in, int groups) {
  double exports = 0, largest_checkpoint = 0;
  for (size_t i = 0; i < jobs_to_run.size(); ++i) {
    auto cfg = to_job_config(jobs_to_run[i]);
    exports += 4.0 * 2.0 * static_cast<double>(cfg.sae.d_sae) * static_cast<double>(d_in[i]);
    largest_checkpoint = std::max(largest_checkpoint, worker::checkpoint_bytes(cfg, d_in[i]));
  }
  int running = std::min<int>(groups, static_cast<int>(jobs_to_run.size()));
  return exports + 3.0 * running * largest_checkpoint;
}

double report_bytes(const std::vector<PlannedJob>& jobs) {
  double logged_lines = 0;
  for (const auto& job : jobs) {
    const auto train = to_job_config(job).train;
    logged_lines += static_cast<double>(train.steps / std::max<int64_t>(1, train.log_every) + 1);
  }
  // Each logged line (about 250 bytes as JSON) appears in report.json and in report.html, counted
  // twice for margin; the page's scripts and styles take about 1 MiB, also counted twice.
  return 4.0 * 250.0 * logged_lines + 2.0 * 1024 * 1024;
}

void check_free_space(const std::filesystem::path& out, double needed, double free_bytes) {
  if (free_bytes >= needed) return;
  throw ConfigError(out.string() + ": the file system has " + byte_size(free_bytes) + " free but the sweep will write about " +
                    byte_size(needed) + " (results, checkpoints and the report); free space or choose another --out");
}

}  // namespace sweep::launcher
