// The probe-based absorption metric and its inputs: first-letter labels from token ids, labels
// files, the parent-feature concepts of ground truth, and the metric itself on crafted SAEs whose
// absorption is known (none, and every child absorbing its parent), on one rank and split over two.
#include <gtest/gtest.h>

#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "sae/linear_probe.h"
#include "sae/probe_absorption.h"
#include "sharding/data_error.h"
#include "sharding/first_letter.h"
#include "sharding/labels.h"
#include "sharding/npy.h"
#include "sharding/safetensors.h"
#include "sharding/synthetic.h"

namespace fs = std::filesystem;
using namespace sweep::sharding;
using sweep::sae::ProbeAbsorption;

namespace {

fs::path temp_file(const std::string& name) {
  return fs::temp_directory_path() / ("sweep_probe_" + std::to_string(::getpid()) + "_" + name);
}

std::vector<int64_t> as_vector(const torch::Tensor& t) {
  auto c = t.to(torch::kLong).contiguous();
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}

torch::Tensor ids(const std::vector<std::string>& vocab, const std::vector<std::string>& tokens) {
  std::vector<int64_t> out;
  for (const auto& t : tokens) out.push_back(std::find(vocab.begin(), vocab.end(), t) - vocab.begin());
  return torch::tensor(out, torch::kLong);
}

constexpr int64_t kS = 18, kA = 0, kT = 19, kC = 2, kD = 3;

}  // namespace

// A character-level vocabulary whose word-start marker is a token of its own, as in the bundled data.
TEST(FirstLetterLabels, CharacterTokensWithAMarkerTokenLabelEachWordsLastRow) {
  const std::vector<std::string> vocab = {"<s>", "\xE2\x96\x81", "S", "n", "a", "k", "e", "t", ".", "3", "\"", "T"};
  auto tokens = ids(vocab, {"<s>", "\xE2\x96\x81", "S", "n", "a", "k", "e", "\xE2\x96\x81", "a", "t", "e", ".",
                            "\xE2\x96\x81", "3", "a", "\"", "T", "\xE2\x96\x81", "t"});
  auto last = as_vector(first_letter_classes(tokens, vocab, std::nullopt, 0, LabelAt::LastToken));
  //                     <s> ▁   S   n   a   k   e   ▁   a   t   e   .   ▁   3   a   "   T   ▁   t
  std::vector<int64_t> want = {-1, -1, -1, -1, -1, -1, kS, -1, -1, -1, kA, -1, -1, -1, -1, -1, kT, -1, kT};
  EXPECT_EQ(last, want) << "words: Snake, ate, 3a (a digit: none), T after a quote, t at the end";
  auto every = as_vector(first_letter_classes(tokens, vocab, std::nullopt, 0, LabelAt::EveryToken));
  std::vector<int64_t> every_want = {-1, -1, kS, kS, kS, kS, kS, -1, kA, kA, kA, -1, -1, -1, -1, -1, kT, -1, kT};
  EXPECT_EQ(every, every_want);
}

// Byte-level BPE: "Ġ" opens a word, a token without it continues the word; a sequence boundary
// ends a word even without punctuation.
TEST(FirstLetterLabels, BytePairTokensContinueAWordUntilTheNextMarkerOrSequence) {
  const std::vector<std::string> vocab = {"<|endoftext|>", "\xC4\xA0The", "\xC4\xA0""cat", "s", ",", "\xC4\xA0""dog", "\xC4\xA0", "gy"};
  auto tokens = ids(vocab, {"\xC4\xA0The", "\xC4\xA0""cat", "s", ",", "\xC4\xA0""dog", "gy", "s", "\xC4\xA0", "gy"});
  auto got = as_vector(first_letter_classes(tokens, vocab, std::nullopt, std::nullopt, LabelAt::LastToken));
  std::vector<int64_t> want = {kT, -1, kC, -1, -1, -1, kD, -1, 6};
  EXPECT_EQ(got, want) << "The, cats, doggys, then gy after a lone marker";
  // Sequences of 5 rows: "dog" starts a new sequence at row 5 ("gy"), which starts a word of its own.
  auto cut = as_vector(first_letter_classes(tokens, vocab, 5, std::nullopt, LabelAt::LastToken));
  std::vector<int64_t> cut_want = {kT, -1, kC, -1, kD, -1, 6, -1, 6};
  EXPECT_EQ(cut, cut_want);
}

TEST(FirstLetterLabels, ATokenOutsideTheVocabularyNamesItsRow) {
  try {
    first_letter_classes(torch::tensor({0, 1, 99}, torch::kLong), {"a", "b"}, 3, std::nullopt, LabelAt::LastToken);
    FAIL() << "expected a DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("row 2 holds token id 99"), std::string::npos) << e.what();
  }
}

TEST(FirstLetterLabels, VocabulariesAreReadFromAListOrATokenizerJson) {
  const auto list = temp_file("vocab.json"), bpe = temp_file("tokenizer.json"), unigram = temp_file("unigram.json"),
             gap = temp_file("gap.json");
  std::ofstream(list) << R"(["<s>", "a", "b"])";
  std::ofstream(bpe) << R"({"model": {"type": "BPE", "vocab": {"b": 1, "a": 0}}, "added_tokens": [{"id": 2, "content": "<eos>"}]})";
  std::ofstream(unigram) << R"({"model": {"type": "Unigram", "vocab": [["<unk>", 0.0], ["x", -1.5]]}})";
  std::ofstream(gap) << R"({"model": {"vocab": {"a": 0, "b": 2}}})";
  EXPECT_EQ(read_vocab(list), (std::vector<std::string>{"<s>", "a", "b"}));
  EXPECT_EQ(read_vocab(bpe), (std::vector<std::string>{"a", "b", "<eos>"}));
  EXPECT_EQ(read_vocab(unigram), (std::vector<std::string>{"<unk>", "x"}));
  EXPECT_THROW(read_vocab(gap), DataError) << "ids with a gap";
  for (const auto& f : {list, bpe, unigram, gap}) fs::remove(f);
}

TEST(LabelFile, ClassesConceptsAndNpyAreReadAndAWrongRowCountIsRefused) {
  const auto classes = temp_file("classes.safetensors"), concepts = temp_file("concepts.safetensors"),
             npy = temp_file("classes.npy");
  write_class_labels(classes, torch::tensor({0, -1, 2, 1}, torch::kLong), {"a", "b", "c"});
  LabelFile file(classes, 4);
  EXPECT_EQ(file.names(), (std::vector<std::string>{"a", "b", "c"}));
  auto rows = file.rows({2, 1, 0});
  EXPECT_TRUE(torch::equal(rows.on, torch::tensor({{0.f, 0.f, 1.f}, {0.f, 0.f, 0.f}, {1.f, 0.f, 0.f}})));
  EXPECT_EQ(as_vector(rows.labelled), (std::vector<int64_t>{1, 0, 1}));
  try {
    LabelFile wrong(classes, 5);
    FAIL() << "expected a DataError";
  } catch (const DataError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(classes.string()), std::string::npos) << what;
    EXPECT_NE(what.find("labels for 4 rows, but the activation files hold 5 rows"), std::string::npos) << what;
  }
  write_class_labels(classes, torch::tensor({0, 3}, torch::kLong), {"a", "b", "c"});
  EXPECT_THROW(LabelFile(classes, 2), DataError) << "class 3 of 3 names";

  auto on = torch::tensor({{1.f, 0.f}, {1.f, 1.f}, {0.f, 0.f}});
  write_safetensors(concepts, concept_csr(on));
  LabelFile csr(concepts, 3);
  EXPECT_EQ(csr.names().size(), 2u);
  EXPECT_TRUE(torch::equal(csr.rows({0, 1, 2}).on, on));
  EXPECT_TRUE(csr.rows({2}).labelled.all().item<bool>()) << "a concept row without concepts is a negative of each";

  write_npy(npy, torch::tensor({1, -1, 0}, torch::kLong));
  EXPECT_EQ(LabelFile(npy, 3).names().size(), 2u);
  write_npy(npy, torch::ones({3}, torch::kFloat));
  EXPECT_THROW(LabelFile(npy, 3), DataError) << "float classes";
  for (const auto& f : {classes, concepts, npy}) fs::remove(f);
}

TEST(ParentConcepts, AConceptIsOnWhereItsFeatureOrADescendantIs) {
  // 0 -> 1 -> 3, 0 -> 2; 4 is a root without children.
  TrueFeatures truth{torch::eye(5), {-1, 0, 0, 1, -1}};
  ParentConcepts concepts(truth);
  EXPECT_EQ(concepts.features(), (std::vector<int64_t>{0, 1}));
  auto acts = torch::zeros({4, 5});
  acts[0][3] = 1;  // a grandchild alone (not possible in the synthetic data, possible in a file)
  acts[1][2] = 1;
  acts[2][4] = 1;
  acts[3][1] = 1;
  auto on = concepts.rows(acts).on;
  EXPECT_TRUE(torch::equal(on, torch::tensor({{1.f, 1.f}, {1.f, 0.f}, {0.f, 0.f}, {1.f, 1.f}})));
}

namespace {

// Data where absorption is easy to tell: 4 roots with 40 exclusive children each (each child is 1.5%
// of its parent's rows, so no single child adds enough F1 to join the parent's main latents), nearly
// orthogonal directions in d_in 256.
SyntheticConfig forest() {
  SyntheticConfig cfg;
  cfg.d_in = 256;
  cfg.n_roots = 4;
  cfg.branching = 40;
  cfg.depth = 2;
  cfg.p_max = 0.4;
  cfg.p_min = 0.25;
  cfg.child_prob = 0.6;
  cfg.noise_std = 0.01;
  cfg.orthogonalize_steps = 0;
  cfg.seed = 5;
  return cfg;
}

struct Crafted {
  torch::Tensor W_dec, f;
};

// Latents = the true features: nothing absorbed.
Crafted true_features(const SyntheticSource& source, const SyntheticRows& rows) {
  return {source.directions(), rows.feature_acts};
}

// Every child latent has absorbed its parent: the parent's latent is silent when a child fires, and
// the child's decoder row is the child's direction plus the parent's.
Crafted absorbed(const SyntheticSource& source, const SyntheticRows& rows) {
  auto W_dec = source.directions().clone(), f = rows.feature_acts.clone();
  const auto& parents = source.parents();
  for (int64_t child = 0; child < source.n_features(); ++child) {
    const int64_t parent = parents[static_cast<size_t>(child)];
    if (parent < 0) continue;
    W_dec[child] = source.directions()[child] + source.directions()[parent];
    f.select(1, parent).masked_fill_(rows.feature_acts.select(1, child) > 0, 0.0);
  }
  return {W_dec / W_dec.norm(2, 1, true), f};
}

struct Scored {
  std::vector<sweep::sae::ConceptAbsorption> concepts;
  std::map<std::string, double> summary;
};

// Scores `rows` split among `ranks` metric objects that reduce through threads, as ranks would.
Scored score(const sweep::sae::LinearProbes& probes, const ParentConcepts& concepts, const Crafted& sae,
             const SyntheticRows& rows, int ranks) {
  std::mutex mutex;
  std::condition_variable changed;
  int arrived = 0;
  std::vector<torch::Tensor> totals;  // per collective, in order
  auto all_reduce = [&](torch::Tensor& t) {
    std::unique_lock<std::mutex> lock(mutex);
    const size_t mine = totals.size() - (arrived > 0 ? 1 : 0);
    if (arrived == 0) totals.push_back(t.clone());
    else totals[mine] += t;
    if (++arrived == ranks) {
      arrived = 0;
      changed.notify_all();
    } else {
      changed.wait(lock, [&] { return arrived == 0 || totals.size() > mine + 1; });
    }
    t.copy_(totals[mine]);
  };
  const int64_t n = rows.activations.size(0);
  auto labels = concepts.rows(rows.feature_acts);
  auto fit = torch::arange(n, torch::kLong).remainder(2) == 0;
  std::vector<Scored> out(static_cast<size_t>(ranks));
  std::vector<std::thread> threads;
  for (int r = 0; r < ranks; ++r) {
    threads.emplace_back([&, r] {
      ProbeAbsorption metric(probes, concepts.names(), sae.W_dec, {});
      const int64_t begin = n * r / ranks, end = n * (r + 1) / ranks;
      for (int64_t first = begin; first < end; first += 1000) {
        const int64_t count = std::min<int64_t>(1000, end - first);
        metric.add(rows.activations.narrow(0, first, count), sae.f.narrow(0, first, count),
                   labels.on.narrow(0, first, count), labels.labelled.narrow(0, first, count), fit.narrow(0, first, count));
      }
      out[static_cast<size_t>(r)].concepts = metric.finish(all_reduce);
      out[static_cast<size_t>(r)].summary = ProbeAbsorption::summary(out[static_cast<size_t>(r)].concepts);
    });
  }
  for (auto& t : threads) t.join();
  return out[0];
}

}  // namespace

TEST(ProbeAbsorption, CraftedSaesScoreTheirKnownAbsorption) {
  SyntheticSource source(forest());
  ParentConcepts concepts(TrueFeatures{source.directions(), source.parents()});
  ASSERT_EQ(concepts.names().size(), 4u);
  auto train = source.rows(0, 20000);
  auto probes = sweep::sae::train_linear_probes(train.activations, concepts.rows(train.feature_acts).on);
  auto held_out = source.rows(100000, 16000);

  auto clean = score(probes, concepts, true_features(source, held_out), held_out, 1);
  EXPECT_EQ(clean.summary["probe_classes"], 4);
  EXPECT_GT(clean.summary["probe_f1"], 0.95) << "the parents are linearly readable";
  EXPECT_LT(clean.summary["probe_absorption_fraction"], 0.02);
  EXPECT_EQ(clean.summary["probe_full_absorption"], 0.0);
  for (size_t c = 0; c < 4; ++c) {
    EXPECT_EQ(clean.concepts[c].main_latents, (std::vector<int64_t>{concepts.features()[c]}))
        << "the parent's own latent is its concept's main latent";
  }

  auto absorbing = score(probes, concepts, absorbed(source, held_out), held_out, 1);
  EXPECT_EQ(absorbing.summary["probe_classes"], 4);
  for (size_t c = 0; c < 4; ++c) {
    const auto& concept = absorbing.concepts[c];
    EXPECT_EQ(concept.main_latents, (std::vector<int64_t>{concepts.features()[c]})) << concept.name;
    // A child fires on 60% of the parent's rows; there the parent's latent is silent and the child's
    // carries the parent's direction: full absorption.
    EXPECT_GT(concept.full_absorption, 0.5) << concept.name;
    EXPECT_LT(concept.full_absorption, 0.7) << concept.name;
    EXPECT_GT(concept.absorption_fraction, 0.5) << concept.name;
  }

  // Split over two ranks, the sums are the same and so is every figure.
  auto split = score(probes, concepts, absorbed(source, held_out), held_out, 2);
  for (size_t c = 0; c < 4; ++c) {
    EXPECT_EQ(split.concepts[c].main_latents, absorbing.concepts[c].main_latents);
    EXPECT_EQ(split.concepts[c].scored, absorbing.concepts[c].scored);
    EXPECT_NEAR(split.concepts[c].absorption_fraction, absorbing.concepts[c].absorption_fraction, 1e-9);
    EXPECT_NEAR(split.concepts[c].full_absorption, absorbing.concepts[c].full_absorption, 1e-9);
  }
}
