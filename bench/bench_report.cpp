// Benchmark of building a sweep's report (report.json's jobs, baselines, differences and verdicts)
// for 1,000 to 20,000 jobs made up in memory: groups of one baseline and three penalised jobs, one
// group per learning rate.
// Links the report library alone, without LibTorch. Prints figures; asserts nothing.
#include <algorithm>
#include <chrono>
#include <cstdio>

#include "report/report.h"

using nlohmann::json;

namespace {

std::vector<sweep::launcher::JobRecord> made_up_jobs(int jobs) {
  std::vector<sweep::launcher::JobRecord> records;
  for (int i = 0; i < jobs; ++i) {
    const int group = i / 4, member = i % 4;
    const bool baseline = member == 0;
    json params = {{"train.lr", 1e-4 * (1 + group)}};
    if (!baseline) params["absorption.ratio_threshold"] = 5.0 * member;
    json result = {{"id", "job" + std::to_string(i)},
                   {"status", "done"},
                   {"params", params},
                   {"config", {{"absorption.enabled", !baseline}}},
                   {"metrics",
                    {{"explained_variance", 0.99 - 0.001 * member},
                     {"l0", 3.0 + 0.01 * (group % 7)},
                     {"gt_absorption", 0.2 - 0.01 * member},
                     {"absorption_active_fraction", baseline ? 0.0 : 0.1}}}};
    records.push_back({result, json::object()});
  }
  return records;
}

}  // namespace

int main() {
  for (int jobs : {1000, 8000, 20000}) {
    auto records = made_up_jobs(jobs);
    auto start = std::chrono::steady_clock::now();
    auto report = sweep::launcher::build_report("made-up", records);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("report of %d jobs: built in %.2f s (%zu jobs with a baseline difference)\n", jobs, seconds,
                static_cast<size_t>(std::count_if(report["jobs"].begin(), report["jobs"].end(),
                                                  [](const json& j) { return j.contains("delta"); })));
  }
  return 0;
}
