// Rows read per second from a SAELens cache against .npy of the same rows (the files
// tests/write_saelens_cache.js writes side by side), in shuffled training batches as a job draws
// them, with a contiguous copy of as many bytes beside them as the machine's limit. Prints figures.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <vector>

#include "sharding/file_source.h"
#include "sharding/saelens_cache.h"

namespace {

using Clock = std::chrono::steady_clock;
using sweep::sharding::FileActivationSource;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// Seconds to gather every batch of `batches` through `source`.
double gather_seconds(const FileActivationSource& source, const std::vector<std::vector<int64_t>>& batches) {
  const auto start = Clock::now();
  for (const auto& batch : batches) {
    const torch::Tensor rows = source.rows(batch);
    if (rows.size(0) != static_cast<int64_t>(batch.size())) std::abort();
  }
  return seconds_since(start);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"rows/s from a SAELens cache against .npy of the same rows"};
  std::string cache_dir;
  int64_t batch_size = 4096, batches = 100;
  int repeats = 5;
  app.add_option("--cache", cache_dir, "a cache written by tests/write_saelens_cache.js (rows.npy beside it)")->required();
  app.add_option("--batch-size", batch_size, "rows per batch");
  app.add_option("--batches", batches, "batches per timing");
  app.add_option("--repeats", repeats, "timings of each, interleaved (the median is printed)");
  CLI11_PARSE(app, argc, argv);
  torch::set_num_threads(1);

  auto start = Clock::now();
  auto cache = sweep::sharding::open_saelens_cache(cache_dir, "");
  const FileActivationSource from_cache(std::move(cache.runs), std::move(cache.files));
  const double open_cache = seconds_since(start);
  start = Clock::now();
  const FileActivationSource from_npy({cache_dir + "/rows.npy"}, "");
  const double open_npy = seconds_since(start);

  const int64_t n = from_cache.num_rows(), d_in = from_cache.d_in();
  auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
  std::vector<std::vector<int64_t>> shuffled(batches);
  for (auto& batch : shuffled) {
    const torch::Tensor order = torch::randint(n, {batch_size}, gen, torch::kLong);
    batch.assign(order.data_ptr<int64_t>(), order.data_ptr<int64_t>() + batch_size);
  }
  // Page both files in first: the figures are of reading from memory, as a job re-reading its data does.
  std::vector<int64_t> all(n);
  for (int64_t i = 0; i < n; ++i) all[i] = i;
  for (int64_t first = 0; first < n; first += 65536) {
    const std::vector<int64_t> chunk(all.begin() + first, all.begin() + std::min(n, first + 65536));
    from_cache.rows(chunk);
    from_npy.rows(chunk);
  }

  const size_t bytes = static_cast<size_t>(batch_size * d_in) * sizeof(float);
  std::vector<float> source(static_cast<size_t>(batch_size * d_in), 1.0f), target(source.size());
  std::vector<double> t_cache, t_npy, t_copy;
  for (int r = 0; r < repeats; ++r) {
    // Which goes first alternates, so neither always meets the allocator's state the other left.
    if (r % 2 == 0) t_cache.push_back(gather_seconds(from_cache, shuffled));
    t_npy.push_back(gather_seconds(from_npy, shuffled));
    if (r % 2 == 1) t_cache.push_back(gather_seconds(from_cache, shuffled));
    start = Clock::now();
    for (int64_t b = 0; b < batches; ++b) {
      source[b % source.size()] += 1.0f;  // keeps the copies from being folded away
      std::memcpy(target.data(), source.data(), bytes);
    }
    t_copy.push_back(seconds_since(start) + (target[0] > 1e30f ? 1 : 0));
  }
  const double rows = static_cast<double>(batch_size * batches);
  auto report = [&](const char* what, double seconds) {
    std::printf("  %-34s %8.2f M rows/s  %6.2f GB/s\n", what, rows / seconds / 1e6,
                rows * d_in * sizeof(float) / seconds / 1e9);
  };
  std::printf("%lld rows of d_in %lld (%lld record batches in the cache), batches of %lld shuffled rows, median of %d, 1 thread\n",
              static_cast<long long>(n), static_cast<long long>(d_in),
              static_cast<long long>(from_cache.shards().size()), static_cast<long long>(batch_size), repeats);
  std::printf("  opening: cache %.3f s (every list length checked), .npy %.3f s\n", open_cache, open_npy);
  report("SAELens cache (Arrow IPC stream)", median(t_cache));
  report(".npy of the same rows", median(t_npy));
  report("contiguous memcpy (the limit)", median(t_copy));
  std::printf("  cache / .npy: %.3f (spread over %d repeats: cache %.3f-%.3f s, .npy %.3f-%.3f s)\n",
              median(t_npy) / median(t_cache), repeats, *std::min_element(t_cache.begin(), t_cache.end()),
              *std::max_element(t_cache.begin(), t_cache.end()), *std::min_element(t_npy.begin(), t_npy.end()),
              *std::max_element(t_npy.begin(), t_npy.end()));
  return 0;
}
