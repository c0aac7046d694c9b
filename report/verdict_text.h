// The verdicts of report.json in words, for the top of report.md and report.html.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace sweep::launcher {

struct Verdict {
  enum class Kind { Warning, Finding, Failure };  // failure: a job that did not finish
  Kind kind;
  std::string text;
};

std::vector<Verdict> verdict_sentences(const nlohmann::json& report);

// The report's opening lines: per penalised grid point and absorption metric, its effect relative
// to the baseline with its interval and its cost in explained variance, largest reduction first.
std::vector<std::string> headline_lines(const nlohmann::json& report);

}  // namespace sweep::launcher
