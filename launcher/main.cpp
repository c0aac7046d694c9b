// Entry point of the `sweep` command: parses the command line (CLI11) and dispatches to running
// a sweep, its status or report, submitting it to Slurm, exporting the synthetic data, listing the
// settings or the BLAS check.
#include <unistd.h>

#include <cstdlib>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "common/version.h"
#include "config/config_schema.h"
#include "launcher/data_export.h"
#include "launcher/data_labels.h"
#include "launcher/doctor.h"
#include "launcher/plan_command.h"
#include "launcher/run_sweep.h"
#include "launcher/stop_signals.h"
#include "report/files.h"
#include "report/status.h"
#include "slurm/submit.h"
#include "worker/freed_memory.h"

namespace {

int print_keys() {
  for (const auto& spec : sweep::launcher::config_schema()) {
    std::printf("%-36s %-10s %s\n", spec.key.c_str(), spec.default_value.dump().c_str(), spec.help.c_str());
  }
  return 0;
}

// Colours only on a real terminal and without NO_COLOR (no-color.org). Ranks under mpirun see a
// pseudo-terminal even when mpirun's own output goes to a file, so they never colour.
void colour_only_on_a_terminal() {
  const bool terminal = ::isatty(STDOUT_FILENO) && !std::getenv("OMPI_COMM_WORLD_SIZE") && !std::getenv("PMIX_RANK");
  const char* no_color = std::getenv("NO_COLOR");
  const bool colour = terminal && (no_color == nullptr || *no_color == '\0');
  spdlog::set_default_logger(spdlog::stdout_color_mt("sweep", colour ? spdlog::color_mode::always : spdlog::color_mode::never));
}

}  // namespace

int main(int argc, char** argv) {
  colour_only_on_a_terminal();
  sweep::worker::keep_freed_memory();
  spdlog::set_pattern("[%H:%M:%S] %^%l%$ %v");
  CLI::App app{"sweep: train grids of sparse autoencoders and aggregate them into one report"};
  app.require_subcommand(0, 1);
  app.set_version_flag("--version", std::string("sweep ") + sweep::sweep_version());

  sweep::launcher::SweepOptions run;
  std::string out;
  app.add_option("file", run.file, "sweep file (TOML)")->check(CLI::ExistingFile);
  app.add_option("--out", out, "output directory (default: runs/<name>)");
  app.add_option("--set", run.overrides, "override a setting: key=value (grid.<key>=[...] for a grid axis)");
  app.add_flag("--fresh", run.fresh, "start over: an existing output directory is kept under a new name");

  auto* data = app.add_subcommand("data", "data tools");
  data->require_subcommand(1);
  auto* export_cmd = data->add_subcommand("export", "write the synthetic data set as .safetensors");
  sweep::launcher::ExportOptions exp;
  int64_t tokens = 0;
  export_cmd->add_option("file", exp.file, "sweep file (TOML)")->required()->check(CLI::ExistingFile);
  export_cmd->add_option("--out", exp.out, "output .safetensors file")->required();
  auto* tokens_option = export_cmd->add_option("--tokens", tokens, "rows to write (default: data.eval_tokens)");
  export_cmd->add_option("--set", exp.overrides, "override a setting: key=value");

  auto* labels_cmd = data->add_subcommand("labels", "write labels for the probe-based absorption metric (data.labels)");
  labels_cmd->require_subcommand(1);
  auto* first_letter = labels_cmd->add_subcommand("first-letter", "label each word's rows by its first letter, from token ids");
  sweep::launcher::FirstLetterOptions letters;
  int64_t seq_len = 0, bos_id = 0;
  auto* tokens_file = first_letter
      ->add_option("--tokens", letters.tokens, "1-D .npy: the token id of every activation row, in row order")
      ->check(CLI::ExistingFile);
  auto* cache_dir = first_letter
      ->add_option("--cache", letters.cache, "a SAELens activation cache (data.path): its token_ids column, in row order")
      ->check(CLI::ExistingDirectory);
  tokens_file->excludes(cache_dir);
  first_letter->add_option("--hook-name", letters.hook_name, "with --cache: its activation column (default: the only one)")
      ->needs(cache_dir);
  first_letter->add_option("--vocab", letters.vocab, "the token strings: a JSON list by id, or a tokenizer.json")
      ->required()
      ->check(CLI::ExistingFile);
  first_letter->add_option("--out", letters.out, "output .safetensors (data.labels)")->required();
  auto* seq_len_option = first_letter->add_option("--seq-len", seq_len, "rows per sequence: a word never crosses a sequence");
  auto* bos_option = first_letter->add_option("--bos-id", bos_id, "the token id that starts each sequence");
  first_letter->add_option("--at", letters.at, "which rows of a word get its letter")
      ->check(CLI::IsMember({"last-token", "every-token"}))
      ->default_str("last-token");

  auto* plan_cmd = app.add_subcommand("plan", "list the jobs a sweep would run (state, memory, time), writing nothing");
  sweep::launcher::PlanOptions planning;
  std::string plan_out;
  plan_cmd->add_option("file", planning.file, "sweep file (TOML)")->required()->check(CLI::ExistingFile);
  plan_cmd->add_option("--out", plan_out, "the output directory a run would use (default: runs/<name>)");
  plan_cmd->add_option("--set", planning.overrides, "override a setting: key=value (grid.<key>=[...] for a grid axis)");
  plan_cmd->add_flag("--json", planning.json, "one JSON document instead of the table");

  auto* keys = app.add_subcommand("keys", "list every sweep-file setting with its default");
  auto* doctor = app.add_subcommand("doctor", "check that LibTorch runs on an optimised BLAS");
  auto* submit = app.add_subcommand("submit", "submit the sweep to Slurm as a batch job that requeues itself until done");
  sweep::launcher::SubmitOptions submission;
  sweep::launcher::add_submit_options(*submit, submission);
  auto* status = app.add_subcommand("status", "show the state of every job of a sweep (running or stopped)");
  std::string status_out;
  status->add_option("out", status_out, "the sweep's output directory")->required();
  auto* report = app.add_subcommand("report", "rewrite report.json, report.md and report.html of a sweep's output");
  std::string report_dir;
  report->add_option("out", report_dir, "the sweep's output directory (runs/<name> or its --out)")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : sweep::kExitInvalidInput;
  }
  if (*export_cmd) {
    if (tokens_option->count() > 0) exp.tokens = tokens;
    return sweep::launcher::export_synthetic_data(exp);
  }
  if (*first_letter) {
    if (seq_len_option->count() > 0) letters.seq_len = seq_len;
    if (bos_option->count() > 0) letters.bos_id = bos_id;
    return sweep::launcher::write_first_letter_labels(letters);
  }
  if (*plan_cmd) {
    if (!plan_out.empty()) planning.out = plan_out;
    return sweep::launcher::print_plan(planning);
  }
  if (*keys) return print_keys();
  if (*doctor) return sweep::launcher::run_doctor();
  if (*submit) return sweep::launcher::submit_sweep(submission);
  if (*status) return sweep::launcher::print_status(status_out);
  if (*report) return sweep::launcher::report_command(report_dir);
  if (run.file.empty()) {
    std::printf("%s", app.help().c_str());
    return sweep::kExitInvalidInput;
  }
  if (!out.empty()) run.out = out;
  // Before MPI starts and the sweep is planned, so that a stop during either exits 75 (resumable).
  sweep::launcher::install_stop_handlers();
  sweep::launcher::MpiSession mpi(&argc, &argv);
  spdlog::set_pattern(fmt::format("[%H:%M:%S] [rank {}] %^%l%$ %v", mpi.world_rank));
  try {
    return sweep::launcher::run_sweep(run, mpi);
  } catch (const std::exception& e) {  // an MPI call of the launcher failed: the world cannot go on
    spdlog::critical("{}", e.what());
    MPI_Abort(MPI_COMM_WORLD, sweep::kExitJobFailed);
    return sweep::kExitJobFailed;
  }
}
