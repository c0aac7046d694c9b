// Reads job states and plans from sweep output directories and compares two runs' results of one
// job byte for byte.
#include "tests/sweep_outputs.h"

#include <gtest/gtest.h>

#include "tests/process_support.h"

namespace sweep::testing {

namespace fs = std::filesystem;
using nlohmann::json;

std::vector<std::string> planned_job_ids(const fs::path& out) {
  const json plan = read_json(out / "plan.json");  // a temporary would end before the loop
  std::vector<std::string> ids;
  for (const auto& job : plan["jobs"]) ids.push_back(job["id"]);
  return ids;
}

json job_state_of(const fs::path& out, const std::string& id) {
  auto file = out / "jobs" / id / "state.json";
  try {
    return fs::exists(file) ? read_json(file) : json::object();
  } catch (const std::exception&) {  // replaced while being read: try again later
    return json::object();
  }
}

void expect_same_results(const fs::path& a, const fs::path& b, const std::string& id) {
  auto job_a = a / "jobs" / id, job_b = b / "jobs" / id;
  EXPECT_EQ(read_text(job_a / "sae" / "sae_weights.safetensors"), read_text(job_b / "sae" / "sae_weights.safetensors"))
      << "final parameters of job " << id << " differ";
  EXPECT_EQ(read_json(job_a / "result.json")["metrics"], read_json(job_b / "result.json")["metrics"]) << id;
  EXPECT_EQ(read_text(job_a / "metrics.jsonl"), read_text(job_b / "metrics.jsonl")) << id;
}

}  // namespace sweep::testing
