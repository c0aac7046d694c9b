// SIGTERM, SIGINT, SIGHUP and SIGUSR1 ask the sweep to stop: the handler only records the signal; the
// training loop checkpoints at its next step boundary. A second SIGINT ends the process at once.
#pragma once

namespace sweep::launcher {

void install_stop_handlers();
bool stop_requested();
// The signal that asked for the stop (0: none).
int stop_signal();

}  // namespace sweep::launcher
