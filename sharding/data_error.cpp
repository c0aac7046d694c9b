// How data errors print shapes.
#include "sharding/data_error.h"

#include <sstream>

#include <c10/util/ArrayRef.h>

namespace sweep::sharding {

std::string shape_string(const std::vector<int64_t>& shape) {
  std::ostringstream out;
  out << c10::IntArrayRef(shape);
  return out.str();
}

}  // namespace sweep::sharding
