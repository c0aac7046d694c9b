// A SIGBUS handler that jumps back into the copy that faulted, on the thread that faulted; any
// other SIGBUS keeps its default action (the process ends, as it would have).
#include "sharding/guarded_copy.h"

#include <setjmp.h>
#include <signal.h>

#include <cstring>
#include <mutex>

namespace sweep::sharding {
namespace {

// volatile: the compiler may not drop or move the stores around memcpy, which it knows not to read it.
thread_local sigjmp_buf* volatile t_resume = nullptr;

void on_bus_error(int signal) {
  if (t_resume != nullptr) siglongjmp(*t_resume, 1);
  ::signal(signal, SIG_DFL);  // not inside a guarded copy: fail as without the handler
  ::raise(signal);
}

void install_handler_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction action {};
    action.sa_handler = on_bus_error;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_NODEFER;
    sigaction(SIGBUS, &action, nullptr);
  });
}

}  // namespace

size_t copy_rows_guarded(uint8_t* out, const std::vector<const uint8_t*>& rows, size_t row_bytes) {
  install_handler_once();
  sigjmp_buf resume;
  volatile size_t i = 0;  // read after the jump: kept in memory, not a register
  if (sigsetjmp(resume, 1) != 0) {
    t_resume = nullptr;
    return i;
  }
  t_resume = &resume;
  for (; i < rows.size(); i = i + 1) std::memcpy(out + i * row_bytes, rows[i], row_bytes);
  t_resume = nullptr;
  return rows.size();
}

}  // namespace sweep::sharding
