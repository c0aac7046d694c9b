// `sweep data labels first-letter`: reads and checks the tokens and vocabulary, labels every row,
// writes the labels and prints how many rows each letter has.
#include "launcher/data_labels.h"

#include <spdlog/spdlog.h>

#include "common/exit_codes.h"
#include "sharding/data_error.h"
#include "sharding/first_letter.h"
#include "sharding/labels.h"
#include "sharding/npy.h"
#include "sharding/saelens_cache.h"

namespace sweep::launcher {
namespace {

// Rows a letter needs before it can be scored: the metric scores a concept on the odd half of the
// held-out rows where its probe agrees, and leaves out concepts with fewer than probe.min_rows (20)
// such rows; with a quarter of the rows held out, that is about an eighth of a letter's rows.
constexpr int64_t kFewRows = 8 * 20;

}  // namespace

int write_first_letter_labels(const FirstLetterOptions& given) {
  FirstLetterOptions options = given;
  if (options.tokens.empty() == options.cache.empty()) {
    spdlog::error("give the token ids as --tokens FILE.npy or --cache DIR (a SAELens activation cache)");
    return kExitInvalidInput;
  }
  torch::Tensor tokens;
  try {
    if (options.cache.empty()) {
      tokens = sharding::read_int_vector_npy(options.tokens, "token ids, one per activation row");
    } else {
      const auto cache = sharding::open_saelens_cache(options.cache, options.hook_name);
      tokens = sharding::saelens_token_ids(cache, options.cache);
      // Each row of a cache is one sequence of context_size positions.
      if (!options.seq_len && !options.bos_id) options.seq_len = cache.context_size;
    }
  } catch (const sharding::DataError& e) {
    spdlog::error("{}", e.what());
    return kExitInvalidInput;
  }
  if (!options.seq_len && !options.bos_id) {
    spdlog::error("give --seq-len N (every sequence is N rows) or --bos-id ID (the token that starts each sequence), so "
                  "that no word runs from one sequence into the next");
    return kExitInvalidInput;
  }
  if (options.seq_len && *options.seq_len < 1) {
    spdlog::error("--seq-len {}: must be at least 1", *options.seq_len);
    return kExitInvalidInput;
  }
  if (options.out.extension() != ".safetensors") {
    spdlog::error("--out {}: the labels are written as .safetensors; name the file *.safetensors", options.out.string());
    return kExitInvalidInput;
  }
  torch::Tensor classes;
  try {
    const auto vocab = sharding::read_vocab(options.vocab);
    if (options.bos_id && (*options.bos_id < 0 || *options.bos_id >= static_cast<int64_t>(vocab.size()))) {
      spdlog::error("--bos-id {}: not a token of {} ({} tokens)", *options.bos_id, options.vocab.string(), vocab.size());
      return kExitInvalidInput;
    }
    classes = sharding::first_letter_classes(
        tokens, vocab, options.seq_len, options.bos_id,
        options.at == "every-token" ? sharding::LabelAt::EveryToken : sharding::LabelAt::LastToken);
  } catch (const sharding::DataError& e) {
    spdlog::error("{}", e.what());
    return kExitInvalidInput;
  }
  const auto names = sharding::letter_names();
  try {
    if (options.out.has_parent_path()) std::filesystem::create_directories(options.out.parent_path());
    sharding::write_class_labels(options.out, classes, names);
  } catch (const std::exception& e) {
    spdlog::error("--out {}: the labels could not be written: {}", options.out.string(), e.what());
    return kExitOutputFailed;
  }
  auto counts = torch::bincount(classes.clamp_min(-1) + 1, {}, static_cast<int64_t>(names.size()) + 1);
  const int64_t rows = classes.size(0), none = counts[0].item<int64_t>();
  spdlog::info("wrote first-letter labels ({}) of {} rows to {}: {} rows labelled, {} in no word or in a word that "
               "starts with a digit (-1)",
               options.at, rows, options.out.string(), rows - none, none);
  std::string table, few;
  for (size_t c = 0; c < names.size(); ++c) {
    const int64_t n = counts[static_cast<int64_t>(c) + 1].item<int64_t>();
    table += " " + names[c] + " " + std::to_string(n);
    if (n < kFewRows) few += (few.empty() ? "" : ", ") + names[c] + " (" + std::to_string(n) + ")";
  }
  spdlog::info("rows per class:{}", table);
  if (!few.empty()) {
    spdlog::warn("few rows for: {}. The metric scores a letter on about an eighth of its rows (the odd half of the "
                 "held-out quarter, where the probe agrees) and leaves out letters with fewer than probe.min_rows (20) "
                 "scored rows: these will likely be left out",
                 few);
  }
  return kExitOk;
}

}  // namespace sweep::launcher
