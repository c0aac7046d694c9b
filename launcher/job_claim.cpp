// Atomic claims: open(O_CREAT | O_EXCL) succeeds for exactly one process; a stale claim is
// replaced under a second O_EXCL file, so that only one process at a time takes over.
#include "launcher/job_claim.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <fstream>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "common/job_state.h"

namespace sweep::launcher {
namespace fs = std::filesystem;
namespace {

fs::path claim_file(const fs::path& job_dir) { return job_dir / "claim"; }

bool create_claim(const fs::path& job_dir, const ClaimOwner& me) {
  int fd = ::open(claim_file(job_dir).c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
  if (fd < 0) return false;
  auto text = nlohmann::json{{"owner", me.owner}, {"host", me.host}, {"pid", me.pid}}.dump();
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  ok = ::close(fd) == 0 && ok;
  if (!ok) {  // a full disk: an empty claim would block the job until it went stale
    ::unlink(claim_file(job_dir).c_str());
    spdlog::error("cannot write {} (is the disk full?): the job is not started", claim_file(job_dir).string());
  }
  return ok;
}

ClaimOwner read_owner(const fs::path& file) {
  try {
    std::ifstream in(file);
    auto j = nlohmann::json::parse(in);
    return {j.at("owner"), j.at("host"), j.at("pid")};
  } catch (const std::exception&) {
    return {};  // created but not yet written (or its writer died in between): judged by its age
  }
}

double last_sign_of_life(const fs::path& job_dir, const ClaimOwner& holder) {
  std::error_code ec;
  auto written = fs::last_write_time(claim_file(job_dir), ec);
  double latest = ec ? 0.0
                     : std::chrono::duration<double>(
                           (written - fs::file_time_type::clock::now() + std::chrono::system_clock::now()).time_since_epoch())
                           .count();
  try {
    auto state = read_job_state(job_dir);
    if (state.owner == holder.owner) latest = std::max(latest, state.heartbeat);
  } catch (const std::exception&) {
  }
  return latest;
}

}  // namespace

ClaimOwner this_process() {
  return {owner_name(::getpid()), this_host(), static_cast<int>(::getpid())};
}

bool try_claim(const fs::path& job_dir, const ClaimOwner& me, double stale_after_seconds) {
  fs::create_directories(job_dir);
  if (create_claim(job_dir, me)) return true;
  auto is_stale = [&](const ClaimOwner& holder) {
    return (!holder.owner.empty() && process_gone(holder.host, holder.pid, holder.owner)) || now_seconds() - last_sign_of_life(job_dir, holder) > stale_after_seconds;
  };
  if (!is_stale(read_owner(claim_file(job_dir)))) return false;
  // Only one process at a time may take over (else two could each replace the other's fresh
  // claim): the takeover itself is guarded by an O_EXCL file, cleared if its maker died.
  auto guard = job_dir / "claim.takeover";
  std::error_code ec;
  int fd = ::open(guard.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
  if (fd < 0) {
    auto made = fs::last_write_time(guard, ec);
    if (!ec && fs::file_time_type::clock::now() - made > std::chrono::duration<double>(stale_after_seconds)) fs::remove(guard, ec);
    return false;
  }
  ::close(fd);
  auto holder = read_owner(claim_file(job_dir));  // look again: someone may have just taken it
  bool taken = false;
  if (!fs::exists(claim_file(job_dir)) || is_stale(holder)) {
    fs::remove(claim_file(job_dir), ec);
    taken = create_claim(job_dir, me);
    if (taken) {
      spdlog::warn("took over job {} from {}, which stopped running it", job_dir.filename().string(),
                   holder.owner.empty() ? "an unknown process" : holder.owner);
    }
  }
  fs::remove(guard, ec);
  return taken;
}

void release_claim(const fs::path& job_dir, const ClaimOwner& me) {
  if (read_owner(claim_file(job_dir)).owner != me.owner) return;
  std::error_code ec;
  fs::remove(claim_file(job_dir), ec);
}

}  // namespace sweep::launcher
