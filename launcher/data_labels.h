// `sweep data labels first-letter`: the first-letter labels of the probe-based absorption metric,
// written from the token id of every activation row (from a .npy or a SAELens cache) and the
// tokenizer's vocabulary.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace sweep::launcher {

struct FirstLetterOptions {
  std::filesystem::path tokens;  // .npy, a token id per activation row
  std::filesystem::path cache;   // or a SAELens cache, whose token_ids column has them
  std::string hook_name;         // the cache's activation column; "" for its only one
  std::filesystem::path vocab;   // JSON list or tokenizer.json
  std::filesystem::path out;     // .safetensors
  std::optional<int64_t> seq_len;
  std::optional<int64_t> bos_id;
  std::string at = "last-token";  // or "every-token"
};

// Returns the exit code (2 on invalid input).
int write_first_letter_labels(const FirstLetterOptions& options);

}  // namespace sweep::launcher
