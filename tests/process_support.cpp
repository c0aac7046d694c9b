// Process helpers for the end-to-end and multi-process tests.
#include "tests/process_support.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;

namespace sweep::testing {

const fs::path& scratch() {
  static const fs::path dir = [] {
    auto d = fs::temp_directory_path() / ("sweep_test_" + std::to_string(::getpid()));
    fs::remove_all(d);
    fs::create_directories(d);
    std::atexit([] {
      if (!std::getenv("SWEEP_KEEP_TEST_OUTPUT")) {
        std::error_code ec;
        fs::remove_all(fs::temp_directory_path() / ("sweep_test_" + std::to_string(::getpid())), ec);
      }
    });
    return d;
  }();
  return dir;
}

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string read_text(const fs::path& file) {
  std::ifstream in(file);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

nlohmann::json read_json(const fs::path& file) {
  std::ifstream in(file);
  if (!in) throw std::runtime_error("cannot read " + file.string());
  return nlohmann::json::parse(in);
}

RunResult run_command(const std::vector<std::string>& command, const std::string& log_name) {
  std::string line;
  for (const auto& word : command) line += (line.empty() ? "" : " ") + quote(word);
  const fs::path log = scratch() / (log_name + ".log");
  line += " > " + quote(log.string()) + " 2>&1";
  int status = std::system(line.c_str());
  RunResult r;
  r.exit_code = status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.log = read_text(log);
  return r;
}

std::vector<std::string> mpirun(int ranks, int time_limit_seconds) {
  // As root OpenMPI needs --allow-run-as-root; more ranks than cores need --oversubscribe.
  return {"timeout", std::to_string(time_limit_seconds), "mpirun", "--allow-run-as-root", "--oversubscribe",
          "-n", std::to_string(ranks)};
}

}  // namespace sweep::testing
