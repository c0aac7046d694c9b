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

}  // namespace sweep::launcher
