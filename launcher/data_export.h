// `sweep data export`: writes the synthetic data set of a sweep file to one .safetensors file
// (activations, ground-truth directions and hierarchy, true feature activations as CSR).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace sweep::launcher {

struct ExportOptions {
  std::filesystem::path file;
  std::filesystem::path out;
  std::optional<int64_t> tokens;  // default: data.eval_tokens
  std::vector<std::string> overrides;
};

// Returns the exit code (2 on invalid input).
int export_synthetic_data(const ExportOptions& options);

}  // namespace sweep::launcher
