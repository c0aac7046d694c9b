// Splits token strings into word-start marker and text, and walks each sequence word by word.
#include "sharding/first_letter.h"

#include <fstream>
#include <map>
#include <string_view>

#include <nlohmann/json.hpp>

#include "sharding/data_error.h"

namespace sweep::sharding {
namespace {

// Word-start markers: a space, GPT-2's byte-level "Ġ" (U+0120) and SentencePiece's "▁" (U+2581).
const char* const kMarkers[] = {" ", "\xC4\xA0", "\xE2\x96\x81"};

bool word_character(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// A token as the words see it: whether it opens with a marker, and its first character after it.
struct TokenShape {
  bool marker = false;
  bool word = false;  // the text after the marker starts with a letter or digit
  int64_t letter = -1;
};

TokenShape shape_of(const std::string& token) {
  TokenShape shape;
  std::string_view rest = token;
  for (const char* marker : kMarkers) {
    if (rest.rfind(marker, 0) == 0) {
      shape.marker = true;
      rest.remove_prefix(std::char_traits<char>::length(marker));
      break;
    }
  }
  if (rest.empty() || !word_character(rest[0])) return shape;
  shape.word = true;
  const char c = static_cast<char>(rest[0] | 0x20);  // ASCII case fold
  if (c >= 'a' && c <= 'z') shape.letter = c - 'a';
  return shape;
}

}  // namespace

std::vector<std::string> letter_names() {
  std::vector<std::string> out;
  for (char c = 'a'; c <= 'z'; ++c) out.push_back(std::string(1, c));
  return out;
}

std::vector<std::string> read_vocab(const std::filesystem::path& file) {
  const std::string where = file.string() + ": ";
  std::ifstream in(file);
  if (!in) throw DataError(where + "cannot be read");
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    throw DataError(where + "not JSON (" + e.what() + ")");
  }
  const std::string hint =
      "\nHINT: give the vocabulary as a JSON list of token strings by id, or a Hugging Face tokenizer.json";
  if (doc.is_array()) {
    std::vector<std::string> out;
    for (const auto& item : doc) {
      if (!item.is_string()) throw DataError(where + "a vocabulary list must hold strings, got " + item.dump() + hint);
      out.push_back(item.get<std::string>());
    }
    return out;
  }
  if (!doc.is_object() || !doc.contains("model") || !doc["model"].is_object() || !doc["model"].contains("vocab")) {
    throw DataError(where + "neither a list of tokens nor a tokenizer.json with model.vocab" + hint);
  }
  std::map<int64_t, std::string> by_id;
  const auto& vocab = doc["model"]["vocab"];
  if (vocab.is_object()) {  // BPE, WordPiece: token -> id
    for (const auto& [token, id] : vocab.items()) {
      if (!id.is_number_integer()) throw DataError(where + "model.vocab[" + nlohmann::json(token).dump() + "] is not an id" + hint);
      by_id[id.get<int64_t>()] = token;
    }
  } else if (vocab.is_array()) {  // Unigram: [token, score] by id
    for (size_t id = 0; id < vocab.size(); ++id) {
      if (!vocab[id].is_array() || vocab[id].empty() || !vocab[id][0].is_string()) {
        throw DataError(where + "model.vocab[" + std::to_string(id) + "] is not a [token, score] pair" + hint);
      }
      by_id[static_cast<int64_t>(id)] = vocab[id][0].get<std::string>();
    }
  } else {
    throw DataError(where + "model.vocab is neither a token -> id map nor a list of [token, score] pairs" + hint);
  }
  for (const auto& added : doc.value("added_tokens", nlohmann::json::array())) {
    if (added.contains("id") && added.contains("content")) by_id[added["id"].get<int64_t>()] = added["content"].get<std::string>();
  }
  std::vector<std::string> out;
  for (const auto& [id, token] : by_id) {
    if (id != static_cast<int64_t>(out.size())) {
      throw DataError(where + "no token has id " + std::to_string(out.size()) + " (the ids must run from 0 without gaps)" + hint);
    }
    out.push_back(token);
  }
  return out;
}

torch::Tensor first_letter_classes(const torch::Tensor& tokens_in, const std::vector<std::string>& vocab,
                                   std::optional<int64_t> seq_len, std::optional<int64_t> bos_id, LabelAt at) {
  std::vector<TokenShape> shapes;
  for (const auto& token : vocab) shapes.push_back(shape_of(token));
  auto tokens = tokens_in.to(torch::kLong).contiguous();
  const int64_t rows = tokens.size(0), n_vocab = static_cast<int64_t>(vocab.size());
  const int64_t* id = tokens.data_ptr<int64_t>();
  auto out = torch::full({rows}, -1, torch::kLong);
  int64_t* classes = out.data_ptr<int64_t>();
  int64_t word_start = -1, letter = -1;  // the current word's first row (-1: none) and class
  auto end_word = [&](int64_t end) {     // the word ends before row `end`
    if (word_start >= 0 && letter >= 0) {
      for (int64_t r = at == LabelAt::EveryToken ? word_start : end - 1; r < end; ++r) classes[r] = letter;
    }
    word_start = -1;
  };
  for (int64_t r = 0; r < rows; ++r) {
    if (id[r] < 0 || id[r] >= n_vocab) {
      throw DataError("row " + std::to_string(r) + " holds token id " + std::to_string(id[r]) + ", outside the vocabulary's " +
                      std::to_string(n_vocab) + " tokens\nHINT: the vocabulary must be the tokenizer the token ids came from");
    }
    if ((seq_len && r % *seq_len == 0) || (bos_id && id[r] == *bos_id)) end_word(r);
    const TokenShape& shape = shapes[static_cast<size_t>(id[r])];
    if (!shape.word) {
      end_word(r);
    } else if (shape.marker || word_start < 0) {
      end_word(r);
      word_start = r;
      letter = shape.letter;
    }
  }
  end_word(rows);
  return out;
}

}  // namespace sweep::sharding
