// The batch script's values (quoted for the shell where the script body uses them) and the small
// template language of slurm/sweep.sbatch.in.
#include "slurm/script.h"

#include <regex>
#include <sstream>
#include <stdexcept>

#include "slurm/sbatch_template.h"

namespace sweep::launcher {
namespace {

using Values = std::map<std::string, std::vector<std::string>>;

std::vector<std::string> unless_empty(const std::string& value) {
  return value.empty() ? std::vector<std::string>{} : std::vector<std::string>{value};
}

// Slurm job names show in squeue: keep them to characters that need no quoting.
std::string job_name(const std::string& sweep_name) {
  return "sweep-" + std::regex_replace(sweep_name, std::regex("[^A-Za-z0-9_.-]"), "_");
}

}  // namespace

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string log_file_pattern(const std::filesystem::path& out, bool array) {
  return (out / "slurm" / (array ? "sweep-%A_%a.out" : "sweep-%j.out")).string();
}

std::string render_sbatch_script(const std::string& sweep_name, const SlurmSettings& s, const ScriptPaths& paths,
                                 const std::vector<std::string>& overrides) {
  std::vector<std::string> quoted_overrides;
  for (const auto& o : overrides) quoted_overrides.push_back(shell_quote(o));
  Values values = {
      {"job_name", {job_name(sweep_name)}},
      {"nodes", {std::to_string(s.nodes)}},
      {"ntasks_per_node", {std::to_string(s.ntasks_per_node)}},
      {"gpus_per_task", s.gpus_per_task > 0 ? std::vector<std::string>{std::to_string(s.gpus_per_task)}
                                            : std::vector<std::string>{}},
      {"time", unless_empty(s.time)},
      {"partition", unless_empty(s.partition)},
      {"account", unless_empty(s.account)},
      {"array", s.array > 0 ? std::vector<std::string>{"0-" + std::to_string(s.array - 1)} : std::vector<std::string>{}},
      {"log", {log_file_pattern(paths.out, s.array > 0)}},
      {"signal_lead", {std::to_string(s.signal_lead)}},
      {"sbatch_arg", s.sbatch_args},
      {"sweep", {shell_quote(paths.sweep.string())}},
      {"sweep_file", {shell_quote(paths.sweep_file.string())}},
      {"out", {shell_quote(paths.out.string())}},
      {"max_requeues", {std::to_string(s.max_requeues)}},
      {"workdir", {shell_quote(paths.workdir.string())}},
      {"script", {shell_quote(paths.script.string())}},
      {"override", quoted_overrides},
  };
  return render_template(sbatch_template(), values);
}

std::string render_template(const std::string& text, const Values& values) {
  static const std::regex placeholder(R"(\{\{([a-z_]+)\}\})");
  std::istringstream lines(text);
  std::string line, out;
  while (std::getline(lines, line)) {
    size_t copies = 1;
    bool several = false;
    for (std::sregex_iterator it(line.begin(), line.end(), placeholder), end; it != end; ++it) {
      auto found = values.find((*it)[1]);
      if (found == values.end()) throw std::logic_error("template placeholder {{" + (*it)[1].str() + "}} has no value");
      size_t n = found->second.size();
      if (n == 0) {
        copies = 0;
        break;
      }
      if (n > 1) {
        if (several && n != copies) throw std::logic_error("lists of different lengths on one line: " + line);
        copies = n;
        several = true;
      }
    }
    for (size_t i = 0; i < copies; ++i) {
      std::string rendered;
      auto last = line.cbegin();
      for (std::sregex_iterator it(line.begin(), line.end(), placeholder), end; it != end; ++it) {
        const auto& items = values.at((*it)[1]);
        rendered.append(last, (*it)[0].first).append(items.size() == 1 ? items[0] : items[i]);
        last = (*it)[0].second;
      }
      out += rendered.append(last, line.cend()) + "\n";
    }
  }
  return out;
}

}  // namespace sweep::launcher
