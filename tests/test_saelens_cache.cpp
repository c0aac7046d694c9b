// SAELens activation caches (data.source = "saelens"), written by apache-arrow's JavaScript
// implementation, not by sweep: the reader gives the numbers and token ids the writer wrote, for
// every dtype and with several shards and record batches; damaged and unsupported caches (and a
// FIFO where a file belongs) are refused with exit 2 naming the file and the reason; a sweep on a cache trains exactly as on the
// same rows written as .npy; first-letter labels come from the cache's token ids.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <fstream>

#include "sharding/data_error.h"
#include "sharding/file_source.h"
#include "sharding/npy.h"
#include "sharding/safetensors.h"
#include "sharding/saelens_cache.h"
#include "test_paths.h"
#include "tests/process_support.h"

namespace fs = std::filesystem;
using namespace sweep::testing;
using sweep::sharding::DataError;
using sweep::sharding::FileActivationSource;

namespace {

constexpr const char* kHook = "blocks.3.hook_resid_post";

// Writes a cache with tests/write_saelens_cache.js; `options` is its JSON (see the script).
fs::path write_cache(const std::string& name, const std::string& options) {
  const fs::path node = SWEEP_NODE, modules = fs::path(SWEEP_SOURCE_DIR) / "report_assets" / "node_modules";
  if (!fs::exists(node) || !fs::exists(modules / "apache-arrow")) {
    ADD_FAILURE() << "needs node (" << node << ") and " << modules / "apache-arrow" << ": run scripts/setup";
    return {};
  }
  const fs::path dir = scratch() / name;
  const auto r = run_command({"env", "NODE_PATH=" + modules.string(), node.string(),
                              (fs::path(SWEEP_SOURCE_DIR) / "tests" / "write_saelens_cache.js").string(), dir.string(),
                              options},
                             "write_" + name);
  EXPECT_EQ(r.exit_code, 0) << r.log;
  return dir;
}

std::string options(const std::string& dtype, const std::string& extra = "") {
  return std::string(R"({"sequences": [5, 3, 4], "context_size": 6, "d_in": 16, "batch_sequences": 2, "hook": ")") +
         kHook + R"(", "dtype": ")" + dtype + "\"" + extra + "}";
}

std::vector<int64_t> all_rows(int64_t n) {
  std::vector<int64_t> out(n);
  for (int64_t i = 0; i < n; ++i) out[i] = i;
  return out;
}

// `sweep data labels first-letter` on a tiny run, exit code and log.
RunResult sweep_run(const std::vector<std::string>& args, const std::string& log) {
  std::vector<std::string> command{SWEEP_BINARY};
  command.insert(command.end(), args.begin(), args.end());
  return run_command(command, log);
}

// A sweep file training on `data_lines` (the [data] section's lines).
fs::path sweep_file(const std::string& name, const std::string& data_lines) {
  const fs::path toml = scratch() / (name + ".toml");
  std::ofstream(toml) << "name = \"" << name << "\"\n"
                      << "[data]\neval_tokens = 24\n" << data_lines
                      << "[sae]\nd_sae = 32\n"
                         "[train]\nsteps = 20\nbatch_size = 24\nlog_every = 10\n"
                         "[grid]\ninclude_baseline = false\n\"train.l1_penalty\" = [0.1, 1.0]\n";
  return toml;
}

}  // namespace

TEST(SaelensCache, ReadsTheNumbersApacheArrowWroteForEachDtype) {
  for (const std::string dtype : {"float32", "float16"}) {
    SCOPED_TRACE(dtype);
    const fs::path dir = write_cache("cache_" + dtype, options(dtype));
    auto cache = sweep::sharding::open_saelens_cache(dir, "");
    EXPECT_EQ(cache.column, kHook);
    EXPECT_EQ(cache.context_size, 6);
    EXPECT_EQ(cache.d_in, 16);
    EXPECT_EQ(cache.files.size(), 3u);
    EXPECT_EQ(cache.runs.size(), 3u + 2u + 2u) << "record batches of 2 sequences: 5 -> 3, 3 -> 2, 4 -> 2";
    const torch::Tensor tokens = sweep::sharding::saelens_token_ids(cache, dir);
    const FileActivationSource from_cache(std::move(cache.runs), std::move(cache.files));
    const FileActivationSource written({(dir / "rows.npy").string()}, "");
    ASSERT_EQ(from_cache.num_rows(), (5 + 3 + 4) * 6);
    ASSERT_EQ(written.num_rows(), from_cache.num_rows());
    const auto rows = all_rows(from_cache.num_rows());
    EXPECT_TRUE(torch::equal(from_cache.rows(rows), written.rows(rows))) << "the rows must be bit-identical";
    EXPECT_TRUE(torch::equal(tokens, sweep::sharding::read_int_vector_npy(dir / "tokens.npy", "token ids")));
    // Shuffled reads too: rows from several shards and batches in one gather.
    const std::vector<int64_t> mixed{71, 0, 35, 12, 47, 5, 30};
    EXPECT_TRUE(torch::equal(from_cache.rows(mixed), written.rows(mixed)));
  }
}

TEST(SaelensCache, NamesTheColumnsWhenTheHookIsNotOne) {
  const fs::path dir = write_cache("cache_hook", options("float32"));
  EXPECT_EQ(sweep::sharding::open_saelens_cache(dir, kHook).column, kHook);
  try {
    sweep::sharding::open_saelens_cache(dir, "blocks.4.hook_resid_post");
    ADD_FAILURE() << "an unknown column was accepted";
  } catch (const DataError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("dataset_info.json"), std::string::npos) << what;
    EXPECT_NE(what.find("blocks.4.hook_resid_post"), std::string::npos) << what;
    EXPECT_NE(what.find(kHook), std::string::npos) << "the message lists the columns there are: " << what;
  }
}

// Each damaged or unsupported cache: `sweep` exits 2 naming the file and the reason.
TEST(SaelensCache, RefusesDamagedAndUnsupportedCachesWithExit2) {
  struct Case {
    std::string name, writer_options;
    std::function<void(const fs::path&)> damage;
    std::string file, reason;
  };
  const std::string shard = "data-00001-of-00003.arrow";
  const std::vector<Case> cases = {
      {"truncated", options("float32"),
       [&](const fs::path& d) { fs::resize_file(d / shard, fs::file_size(d / shard) - 200); }, shard, "truncated"},
      {"no_end", options("float32"),
       [&](const fs::path& d) { fs::resize_file(d / shard, fs::file_size(d / shard) - 8); }, shard,
       "end-of-stream marker"},
      {"compressed", options("float32", R"(, "compress": true)"), nullptr, "data-00000-of-00003.arrow", "compressed"},
      {"schema", options("float32", R"(, "leaf": "float64")"), nullptr, "data-00000-of-00003.arrow",
       "list<list<float64>>"},
      {"shape", options("float32"),
       [](const fs::path& d) {
         auto text = read_text(d / "dataset_info.json");
         text.replace(text.find("16"), 2, "12");  // d_in 16 -> 12: every position's list is too long
         std::ofstream(d / "dataset_info.json") << text;
       },
       "data-00000-of-00003.arrow", "holds 16 entries where 12 are expected"},
      {"missing", options("float32"), [&](const fs::path& d) { fs::remove(d / shard); }, shard, "state.json lists"},
      {"fifo", options("float32"),
       [](const fs::path& d) {
         fs::remove(d / "dataset_info.json");
         ASSERT_EQ(mkfifo((d / "dataset_info.json").c_str(), 0600), 0);  // reading it would wait for a writer
       },
       "dataset_info.json", "is not a regular file"},
      {"dict", options("float32"), [](const fs::path& d) { std::ofstream(d / "dataset_dict.json") << "{}"; },
       "cache_dict", "DatasetDict"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const fs::path dir = write_cache("cache_" + c.name, c.writer_options);
    if (c.damage) c.damage(dir);
    const auto toml = sweep_file("damaged_" + c.name, "source = \"saelens\"\npath = \"" + dir.string() + "\"\n");
    const auto r = sweep_run({toml.string(), "--out", (scratch() / ("out_" + c.name)).string()}, "damaged_" + c.name);
    EXPECT_EQ(r.exit_code, 2) << r.log;
    EXPECT_NE(r.log.find(c.file), std::string::npos) << r.log;
    EXPECT_NE(r.log.find(c.reason), std::string::npos) << r.log;
    EXPECT_NE(r.log.find("HINT"), std::string::npos) << r.log;
  }
}

// The same rows as a cache and as .npy: the same batches, so the same metrics to the last bit;
// the export's metadata takes the hook and the context size from the cache.
TEST(SaelensCache, ASweepOnACacheTrainsExactlyAsOnTheSameRowsAsNpy) {
  const fs::path dir = write_cache("cache_sweep", options("float16"));
  const auto on_cache = sweep_file("on_cache", "source = \"saelens\"\npath = \"" + dir.string() + "\"\n");
  const auto on_npy = sweep_file("on_npy", "source = \"files\"\npaths = [\"" + (dir / "rows.npy").string() + "\"]\n");
  for (const auto& toml : {on_cache, on_npy}) {
    const auto r = sweep_run({toml.string(), "--out", (scratch() / toml.stem()).string()}, toml.stem().string());
    ASSERT_EQ(r.exit_code, 0) << r.log;
  }
  const auto cache_report = read_json(scratch() / "on_cache" / "report.json");
  const auto npy_report = read_json(scratch() / "on_npy" / "report.json");
  ASSERT_EQ(cache_report["jobs"].size(), 2u);
  for (size_t j = 0; j < 2; ++j) {
    const auto& a = cache_report["jobs"][j];
    const auto& b = npy_report["jobs"][j];
    ASSERT_EQ(a["config"]["train.l1_penalty"], b["config"]["train.l1_penalty"]);
    for (const char* metric : {"explained_variance", "mse", "l0", "dead_fraction"})
      EXPECT_EQ(a["metrics"][metric], b["metrics"][metric]) << metric;
    const auto cfg = read_json(scratch() / "on_cache" / "jobs" / a["id"].get<std::string>() / "sae" / "cfg.json");
    EXPECT_EQ(cfg["metadata"]["hook_name"], kHook);
    EXPECT_EQ(cfg["metadata"]["context_size"], 6);
  }
  // A re-run resumes; a shard changed since is refused.
  EXPECT_EQ(sweep_run({on_cache.string(), "--out", (scratch() / "on_cache").string()}, "on_cache_again").exit_code, 0);
  {
    std::fstream shard(dir / "data-00000-of-00003.arrow", std::ios::in | std::ios::out | std::ios::binary);
    shard.seekp(-100, std::ios::end);
    shard.put('\x7f');
  }
  const auto changed = sweep_run({on_cache.string(), "--out", (scratch() / "on_cache").string()}, "on_cache_changed");
  EXPECT_EQ(changed.exit_code, 2) << changed.log;
  EXPECT_NE(changed.log.find("data-00000-of-00003.arrow"), std::string::npos) << changed.log;
}

// `sweep data labels first-letter --cache DIR` labels the rows from the cache's token ids, as
// --tokens does from the same ids in a .npy with --seq-len context_size.
TEST(SaelensCache, FirstLetterLabelsComeFromTheCachesTokenIds) {
  const fs::path dir = write_cache("cache_labels", options("float32"));
  const fs::path vocab = scratch() / "vocab.json";
  {
    std::ofstream out(vocab);
    out << "[";
    for (int i = 0; i < 1000; ++i) out << (i ? "," : "") << "\"" << (i % 3 ? " " : "") << char('a' + i % 26) << "x\"";
    out << "]";
  }
  const fs::path from_cache = scratch() / "labels_cache.safetensors", from_npy = scratch() / "labels_npy.safetensors";
  const auto a = sweep_run({"data", "labels", "first-letter", "--cache", dir.string(), "--vocab", vocab.string(), "--out",
                            from_cache.string()},
                           "labels_cache");
  ASSERT_EQ(a.exit_code, 0) << a.log;
  const auto b = sweep_run({"data", "labels", "first-letter", "--tokens", (dir / "tokens.npy").string(), "--seq-len", "6",
                            "--vocab", vocab.string(), "--out", from_npy.string()},
                           "labels_npy");
  ASSERT_EQ(b.exit_code, 0) << b.log;
  const auto x = sweep::sharding::read_safetensors(from_cache), y = sweep::sharding::read_safetensors(from_npy);
  ASSERT_EQ(x.size(), y.size());
  for (const auto& [name, tensor] : x) {
    ASSERT_TRUE(y.count(name)) << name;
    EXPECT_TRUE(torch::equal(tensor, y.at(name))) << name;
  }
  const auto classes = x.begin()->second;
  EXPECT_EQ(classes.size(0), (5 + 3 + 4) * 6);
  EXPECT_GT(classes.ge(0).sum().item<int64_t>(), 0) << "some rows are labelled";
}
