// The tool's version, from the project() line of the top CMakeLists.txt (one place).
#pragma once

namespace sweep {

const char* sweep_version();

}  // namespace sweep
