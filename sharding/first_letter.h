// First-letter labels from token ids, the task of SAEBench's absorption_first_letter: every row
// inside a word whose first character is a letter gets that letter's class (0-25, case folded), at
// the word's last token (as SAEBench reads a word) or at each of its tokens; other rows get -1.
// A word starts at a token that begins with a word-start marker (a space, "Ġ" or "▁") followed by
// a letter or digit, or at such a token with no marker after a token that is not part of a word
// (punctuation, a marker alone as in character-level vocabularies, a special token, a sequence
// start); it goes on through the following tokens that begin with a letter or digit and carry no
// marker. Letters and digits are ASCII ones; any other character ends a word.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <torch/torch.h>

namespace sweep::sharding {

enum class LabelAt { LastToken, EveryToken };

// The class names: "a" to "z".
std::vector<std::string> letter_names();

// The token strings by id, from a JSON list of strings or a Hugging Face tokenizer.json (its
// model's vocab, as a token -> id map or as [token, score] pairs, and its added_tokens). Throws
// DataError naming the file when it is neither, or when an id is missing.
std::vector<std::string> read_vocab(const std::filesystem::path& file);

// tokens [rows] int64: the token id of every activation row, sequences one after another. A
// sequence starts every `seq_len` rows (when given) and at every `bos_id` token (when given).
// Returns [rows] int64 classes. Throws DataError for a token id outside the vocabulary, naming
// the row and the id.
torch::Tensor first_letter_classes(const torch::Tensor& tokens, const std::vector<std::string>& vocab,
                                   std::optional<int64_t> seq_len, std::optional<int64_t> bos_id, LabelAt at);

}  // namespace sweep::sharding
