// SAELens v6 format check: cfg.json keys, the tensors of sae_weights.safetensors and
// sparsity.safetensors, and the unit-norm decoder rows.
#include "tests/saelens_format_check.h"

#include <cmath>
#include <exception>
#include <fstream>
#include <map>
#include <optional>
#include <set>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "sharding/data_error.h"
#include "sharding/safetensors.h"

namespace sweep::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// The major version of "6.2.1" (or of a bare number); nullopt when it cannot be read.
std::optional<long> major_version(const json& v) {
  if (v.is_number()) return static_cast<long>(v.get<double>());
  if (!v.is_string()) return std::nullopt;
  const std::string s = v.get<std::string>();
  try {
    size_t used = 0;
    long major = std::stol(s, &used);
    if (used == 0) return std::nullopt;
    return major;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

struct Dims {
  std::optional<int64_t> d_in, d_sae;
  std::string arch;
  double decoder_norm = 1.0;  // 1 / metadata.activation_norm_scaling_factor where one was folded in
};

Dims check_cfg(const fs::path& dir, std::vector<std::string>& problems) {
  Dims dims;
  const fs::path file = dir / "cfg.json";
  std::ifstream in(file);
  if (!in) {
    problems.push_back("cfg.json: missing or unreadable");
    return dims;
  }
  json cfg;
  try {
    cfg = json::parse(in);
  } catch (const std::exception& e) {
    problems.push_back(std::string("cfg.json: does not parse: ") + e.what());
    return dims;
  }
  if (cfg.is_object() && cfg.contains("metadata") && cfg["metadata"].is_object()) {
    const json factor = cfg["metadata"].value("activation_norm_scaling_factor", json());
    if (factor.is_number() && factor.get<double>() > 0) dims.decoder_norm = 1.0 / factor.get<double>();
  }
  if (!cfg.is_object()) {
    problems.push_back("cfg.json: not a JSON object");
    return dims;
  }
  auto problem = [&](const std::string& key, const std::string& what) {
    problems.push_back("cfg.json: " + key + (cfg.contains(key) ? " = " + cfg[key].dump() : "") + ": " + what);
  };

  static const std::set<std::string> kArchitectures = {"standard", "topk", "jumprelu"};
  if (!cfg.contains("architecture") || !cfg["architecture"].is_string()) {
    problem("architecture", "missing or not a string");
  } else {
    dims.arch = cfg["architecture"].get<std::string>();
    if (!kArchitectures.count(dims.arch)) problem("architecture", "not one of \"standard\", \"topk\", \"jumprelu\"");
  }
  for (const char* key : {"d_in", "d_sae"}) {
    if (!cfg.contains(key) || !cfg[key].is_number_integer() || cfg[key].get<int64_t>() < 1) {
      problem(key, "missing or not a positive integer");
    } else {
      (std::string(key) == "d_in" ? dims.d_in : dims.d_sae) = cfg[key].get<int64_t>();
    }
  }
  if (cfg.value("dtype", json()) != "float32") problem("dtype", "must be \"float32\"");
  if (!cfg.contains("device") || !cfg["device"].is_string()) problem("device", "missing or not a string");
  if (!cfg.contains("apply_b_dec_to_input") || !cfg["apply_b_dec_to_input"].is_boolean()) {
    problem("apply_b_dec_to_input", "missing or not a bool");
  }
  if (cfg.value("normalize_activations", json()) != "none") problem("normalize_activations", "must be \"none\"");
  if (dims.arch == "topk") {
    if (!cfg.contains("k") || !cfg["k"].is_number_integer()) {
      problem("k", "topk needs an integer k");
    } else if (cfg["k"].get<int64_t>() < 1 || (dims.d_sae && cfg["k"].get<int64_t>() > *dims.d_sae)) {
      problem("k", "must be in [1, d_sae]");
    }
  }
  if (!cfg.contains("metadata") || !cfg["metadata"].is_object()) {
    problem("metadata", "missing or not an object");
  } else {
    const json& meta = cfg["metadata"];
    auto version = meta.contains("sae_lens_version") ? major_version(meta["sae_lens_version"]) : std::nullopt;
    if (!version || *version < 6) {
      problems.push_back("cfg.json: metadata.sae_lens_version = " + meta.value("sae_lens_version", json()).dump() +
                         ": must be a version >= 6");
    }
    for (const char* key : {"hook_name", "model_name"}) {
      if (!meta.contains(key) || !meta[key].is_string()) {
        problems.push_back(std::string("cfg.json: metadata.") + key + ": missing or not a string");
      }
    }
  }
  return dims;
}

// Checks a safetensors file against the expected names, dtypes and shapes (a dimension of -1:
// unknown, not checked); returns the tensors when the header is valid, nullopt otherwise.
std::optional<std::map<std::string, torch::Tensor>> check_tensors(
    const fs::path& file, const std::map<std::string, std::vector<int64_t>>& expected, bool exact,
    std::vector<std::string>& problems) {
  const std::string name = file.filename().string();
  if (!fs::exists(file)) {
    problems.push_back(name + ": missing");
    return std::nullopt;
  }
  sharding::SafetensorsHeader header;
  try {
    header = sharding::read_safetensors_header(file);
  } catch (const std::exception& e) {
    problems.push_back(name + ": unreadable: " + e.what());
    return std::nullopt;
  }
  for (const auto& [tensor, shape] : expected) {
    auto it = header.tensors.find(tensor);
    if (it == header.tensors.end()) {
      problems.push_back(name + ": tensor " + tensor + " is missing");
      continue;
    }
    const auto& info = it->second;
    if (info.dtype != "F32") problems.push_back(name + ": tensor " + tensor + " has dtype " + info.dtype + ", not F32");
    bool match = info.shape.size() == shape.size();
    for (size_t i = 0; match && i < shape.size(); ++i) match = shape[i] < 0 || shape[i] == info.shape[i];
    if (!match) {
      problems.push_back(name + ": tensor " + tensor + " has shape " + sharding::shape_string(info.shape) + ", expected " +
                         sharding::shape_string(shape));
    }
  }
  if (exact) {
    for (const auto& [tensor, info] : header.tensors) {
      if (!expected.count(tensor)) problems.push_back(name + ": unexpected tensor " + tensor);
    }
  }
  try {
    return sharding::read_safetensors(file);
  } catch (const std::exception& e) {
    problems.push_back(name + ": unreadable: " + e.what());
    return std::nullopt;
  }
}

// The tensor `name` when it is present as a float tensor of the expected shape.
std::optional<torch::Tensor> usable(const std::map<std::string, torch::Tensor>& tensors, const std::string& name,
                                    const std::vector<int64_t>& shape) {
  auto it = tensors.find(name);
  if (it == tensors.end() || it->second.scalar_type() != torch::kFloat) return std::nullopt;
  if (it->second.sizes().vec() != shape) return std::nullopt;
  return it->second;
}

}  // namespace

std::vector<std::string> saelens_problems(const std::filesystem::path& sae_dir) {
  std::vector<std::string> problems;
  if (!fs::is_directory(sae_dir)) return {sae_dir.filename().string() + ": not a directory"};
  const Dims dims = check_cfg(sae_dir, problems);
  const int64_t d_in = dims.d_in.value_or(-1), d_sae = dims.d_sae.value_or(-1);

  std::map<std::string, std::vector<int64_t>> weights = {
      {"W_enc", {d_in, d_sae}}, {"W_dec", {d_sae, d_in}}, {"b_enc", {d_sae}}, {"b_dec", {d_in}}};
  if (dims.arch == "jumprelu") weights["threshold"] = {d_sae};
  if (auto tensors = check_tensors(sae_dir / "sae_weights.safetensors", weights, /*exact=*/true, problems)) {
    for (const auto& [name, tensor] : *tensors) {
      if (tensor.is_floating_point() && !torch::isfinite(tensor).all().item<bool>()) {
        problems.push_back("sae_weights.safetensors: tensor " + name + " holds NaN or Inf");
      }
    }
    if (dims.d_in && dims.d_sae) {
      if (auto w_dec = usable(*tensors, "W_dec", {d_sae, d_in})) {
        // Unit norm, or 1 / the activation scale folded into the weights (SAELens's
        // fold_activation_norm_scaling_factor divides W_dec by it).
        auto norms = w_dec->to(torch::kDouble).norm(2, 1) / dims.decoder_norm;
        double worst = (norms - 1.0).abs().max().item<double>();
        if (!(worst <= 1e-4)) {
          problems.push_back("sae_weights.safetensors: W_dec rows are not unit norm, nor 1 / the folded "
                             "activation_norm_scaling_factor (largest relative | norm - expected | = " +
                             std::to_string(worst) + ")");
        }
      }
    }
  }

  if (auto tensors = check_tensors(sae_dir / "sparsity.safetensors", {{"sparsity", {d_sae}}}, /*exact=*/false,
                                   problems)) {
    auto it = tensors->find("sparsity");
    if (it != tensors->end() && it->second.is_floating_point() && it->second.numel() > 0) {
      auto s = it->second.to(torch::kDouble);
      // log10 of a frequency in [0, 1], floored at log10(1e-10); float32 rounding allowed for.
      const double lo = s.min().item<double>(), hi = s.max().item<double>();
      if (!std::isfinite(lo) || !std::isfinite(hi) || hi > 0.0 || lo < -10.0 - 1e-5) {
        problems.push_back("sparsity.safetensors: sparsity values lie in [" + std::to_string(lo) + ", " +
                           std::to_string(hi) + "], not in [-10, 0] (log10 of a firing frequency)");
      }
    }
  }
  return problems;
}

}  // namespace sweep::testing
