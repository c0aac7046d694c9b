// The Slurm batch-script template slurm/sweep.sbatch.in, compiled into the binary at build time
// so that `sweep submit` needs no file beside the executable.
#pragma once

namespace sweep::launcher {

const char* sbatch_template();

}  // namespace sweep::launcher
