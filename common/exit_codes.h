// Every exit code of every `sweep` command, in one table (the README lists the same).
#pragma once

namespace sweep {

enum ExitCode : int {
  kExitOk = 0,
  kExitCheckFailed = 1,    // sweep doctor: LibTorch is not on an optimised BLAS
  kExitInvalidInput = 2,   // bad sweep file, --set, data or output directory: nothing was run
  kExitJobFailed = 3,      // the sweep ran, and at least one job failed
  kExitSubmitFailed = 4,   // sweep submit: sbatch is missing or refused the job
  kExitOutputFailed = 5,   // results or the report could not be written (a full disk): free space, re-run
  kExitPreempted = 75,     // EX_TEMPFAIL: stopped by a signal; re-running the same command continues
  kExitInterrupted = 130,  // 128 + SIGINT: a second Ctrl-C, at once
};

}  // namespace sweep
