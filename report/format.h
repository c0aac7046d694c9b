// How the report writes numbers, params and jobs for people: shared by report.md, report.html
// and the verdict sentences, so all three say the same thing the same way.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace sweep::launcher {

// printf-style `format` of a finite number; "n/a" otherwise.
std::string format_number(const char* format, const nlohmann::json& value);
// A difference with its sign: "+0.012", "-3.1".
std::string format_signed(const char* format, double value);
// A param value: strings bare, everything else as JSON.
std::string param_value(const nlohmann::json& value);
// A job's params as "key=value, key=value" without absorption.enabled; "baseline" leads for a
// baseline, and an explicit grid point's label stands for the params it set. Used as the plots'
// colour key and in sentences.
std::string job_label(const nlohmann::json& job);
// h:mm:ss (m:ss under an hour); "?" when not finite.
std::string format_duration(double seconds);
// "key=value key=value" of a job's swept params ("-" when none).
std::string params_text(const nlohmann::json& params);
// Text on one line: newlines become spaces.
std::string one_line(std::string text);

}  // namespace sweep::launcher
