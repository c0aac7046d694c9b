// Process helpers for the end-to-end and multi-process tests.
#include "tests/process_support.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "test_paths.h"

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

BackgroundRun::BackgroundRun(const std::vector<std::string>& command, const std::string& log_name)
    : log_(scratch() / (log_name + ".log")) {
  pid_ = ::fork();
  if (pid_ == 0) {
    ::setpgid(0, 0);
    int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    std::vector<char*> argv;
    for (const auto& word : command) argv.push_back(const_cast<char*>(word.c_str()));
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  ::setpgid(pid_, pid_);
}

BackgroundRun::~BackgroundRun() {
  if (finished_) return;
  ::kill(-pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
}

namespace {

// Waits (at most 5 s) until `signal` is no longer pending for `pid`: two signals of one kind sent
// to a process that has not run in between (a loaded machine) would otherwise merge into one.
void wait_until_delivered(int pid, int signal) {
  const uint64_t bit = uint64_t{1} << (signal - 1);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    bool pending = false, alive = false;
    for (std::string line; std::getline(status, line);) {
      if (line.rfind("SigPnd:", 0) != 0 && line.rfind("ShdPnd:", 0) != 0) continue;
      alive = true;
      pending = pending || (std::stoull(line.substr(7), nullptr, 16) & bit) != 0;
    }
    if (!alive || !pending) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

}  // namespace

std::vector<int> BackgroundRun::descendants(const std::string& name) const {
  std::map<int, int> parent;
  std::map<int, std::string> command;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    auto pid_text = entry.path().filename().string();
    if (pid_text.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    auto close = line.rfind(')');  // "pid (comm) state ppid ..."
    std::istringstream rest(line.substr(close + 2));
    std::string state;
    int ppid = 0;
    rest >> state >> ppid;
    int pid = std::stoi(pid_text);
    parent[pid] = ppid;
    command[pid] = line.substr(line.find('(') + 1, close - line.find('(') - 1);
  }
  std::vector<int> found;
  for (const auto& [pid, comm] : command) {
    if (comm != name) continue;
    for (int p = parent[pid]; p > 1; p = parent.count(p) ? parent[p] : 0) {
      if (p == pid_) {
        found.push_back(pid);
        break;
      }
    }
  }
  return found;
}

int BackgroundRun::signal_descendants(const std::string& name, int signal) const {
  int signalled = 0;
  for (int pid : descendants(name)) {
    if (::kill(pid, signal) == 0) {
      ++signalled;
      wait_until_delivered(pid, signal);
    }
  }
  return signalled;
}

bool BackgroundRun::wait_until(const std::function<bool()>& ready, double seconds) {
  for (double waited = 0; waited < seconds; waited += 0.02) {
    if (ready()) return true;
    int status = 0;
    if (!finished_ && ::waitpid(pid_, &status, WNOHANG) == pid_) {
      finished_ = true;
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    if (finished_) return ready();
    ::usleep(20000);
  }
  return false;
}

int BackgroundRun::wait(double seconds) {
  for (double waited = 0; !finished_ && waited < seconds; waited += 0.02) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      finished_ = true;
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      break;
    }
    ::usleep(20000);
  }
  return finished_ ? exit_code_ : -1;
}

std::string BackgroundRun::log() const { return read_text(log_); }

std::vector<std::string> mpirun(int ranks, int time_limit_seconds) {
  // As root OpenMPI needs --allow-run-as-root; more ranks than cores need --oversubscribe.
  return {"timeout", std::to_string(time_limit_seconds), "mpirun", "--allow-run-as-root", "--oversubscribe",
          "-n", std::to_string(ranks)};
}

std::string quick_toml() { return std::string(SWEEP_SOURCE_DIR) + "/sweeps/quick.toml"; }

RunResult run_quick(int ranks, const std::string& name, const std::vector<std::string>& args) {
  std::vector<std::string> command = ranks > 0 ? mpirun(ranks, 300) : std::vector<std::string>{};
  command.insert(command.end(), {SWEEP_BINARY, quick_toml(), "--out", (scratch() / name).string()});
  command.insert(command.end(), args.begin(), args.end());
  return run_command(command, name);
}

}  // namespace sweep::testing
