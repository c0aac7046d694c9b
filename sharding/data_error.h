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

// Throws DataError("<subject>: <what>\nHINT: <hint>"): subject names the file (or glob pattern),
// hint says what to do about it.
[[noreturn]] void fail_with_hint(const std::string& subject, const std::string& what, const std::string& hint);

// A shape as the messages print it: "[2, 3]".
std::string shape_string(const std::vector<int64_t>& shape);

}  // namespace sweep::sharding
