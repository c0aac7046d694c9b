// Summary facts from report["counts"] and report["summary"] (which sums the jobs' "train"
// blocks), worded for people.
#include "report/summary.h"

#include "report/format.h"

namespace sweep::launcher {
namespace {

std::string joined(const nlohmann::json& values) {
  std::string out;
  for (const auto& v : values) out += (out.empty() ? "" : ", ") + param_value(v);
  return out.empty() ? "n/a" : out;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> summary_items(const nlohmann::json& report) {
  const auto& c = report["counts"];
  const auto& s = report["summary"];
  std::vector<std::pair<std::string, std::string>> items = {{"jobs", c["total"].dump()},
                                                            {"done", c["done"].dump()},
                                                            {"failed", c["failed"].dump()},
                                                            {"preempted", c["preempted"].dump()}};
  if (c["other"].get<int>() > 0) items.emplace_back("not finished otherwise", c["other"].dump());
  items.emplace_back("training time (sum over jobs)", format_number("%.1f", s["train_seconds"]) + " s");
  items.emplace_back("attempts", s["attempts"].dump());
  items.emplace_back("hardware", joined(s["devices"]));
  items.emplace_back("ranks per job", joined(s["ranks_per_job"]));
  return items;
}

}  // namespace sweep::launcher
