// The tool's version string, compiled in from CMake's PROJECT_VERSION.
#include "common/version.h"

namespace sweep {

const char* sweep_version() { return SWEEP_VERSION; }

}  // namespace sweep
