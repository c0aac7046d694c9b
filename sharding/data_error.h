// DataError: the exception the activation-file readers throw for malformed or unusable input.
// Its message names the offending file (or glob pattern) and says what is wrong.
#pragma once

#include <stdexcept>

namespace sweep::sharding {

struct DataError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace sweep::sharding
