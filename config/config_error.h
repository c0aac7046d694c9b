// The error for invalid sweep input: it names where (file:line or the command line), the key
// and what to do. The CLI prints it and exits with code 2 before any work starts.
#pragma once

#include <stdexcept>
#include <string>

namespace sweep::launcher {

struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace sweep::launcher
