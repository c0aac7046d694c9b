// How data errors are thrown with their hint, and how they print shapes.
#include "sharding/data_error.h"

#include <sstream>

#include <c10/util/ArrayRef.h>

namespace sweep::sharding {

void fail_with_hint(const std::string& subject, const std::string& what, const std::string& hint) {
  throw DataError(subject + ": " + what + "\nHINT: " + hint);
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::ostringstream out;
  out << c10::IntArrayRef(shape);
  return out.str();
}

}  // namespace sweep::sharding
