// Sizes for people: "1.00 GiB", "3.4 MiB", "120.0 KiB", "512 bytes" (never "0.00 GiB").
#pragma once

#include <string>

namespace sweep {

std::string byte_size(double bytes);

}  // namespace sweep
