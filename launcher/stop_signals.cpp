// Async-signal-safe stop flag: the handler writes one sig_atomic_t and nothing else (apart from
// _exit on a second SIGINT, which is async-signal-safe too).
#include "launcher/stop_signals.h"

#include <signal.h>
#include <unistd.h>

#include "common/exit_codes.h"

namespace sweep::launcher {
namespace {

volatile sig_atomic_t g_stop_signal = 0;

void on_stop_signal(int signal) {
  if (signal == SIGINT && g_stop_signal == SIGINT) ::_exit(kExitInterrupted);
  g_stop_signal = signal;
}

}  // namespace

void install_stop_handlers() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  for (int signal : {SIGTERM, SIGINT, SIGHUP, SIGUSR1}) sigaction(signal, &action, nullptr);
}

bool stop_requested() { return g_stop_signal != 0; }
int stop_signal() { return g_stop_signal; }

}  // namespace sweep::launcher
