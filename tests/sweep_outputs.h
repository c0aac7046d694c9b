// Reading and comparing what a sweep wrote, for the tests that run `sweep` as a process: a job's
// state while it may be rewritten, and the equality of two runs' results for one job.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace sweep::testing {

// The plan's job ids, in plan order.
std::vector<std::string> planned_job_ids(const std::filesystem::path& out);
// jobs/<id>/state.json, or {} while it does not exist or is being replaced.
nlohmann::json job_state_of(const std::filesystem::path& out, const std::string& id);
// GoogleTest expectations: the job's SAE weights (bytes), metrics and metrics.jsonl are equal.
void expect_same_results(const std::filesystem::path& a, const std::filesystem::path& b, const std::string& id);

}  // namespace sweep::testing
