// DataError: the exception the activation-file readers throw for malformed or unusable input.
// Its message names the offending file (or glob pattern) and says what is wrong.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace sweep::sharding {

struct DataError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A shape as the messages print it: "[2, 3]".
std::string shape_string(const std::vector<int64_t>& shape);

}  // namespace sweep::sharding
