// Counts the synchronizing CUDA operations LibTorch reports while a counter is alive: in its sync
// debug mode "warn", each one (a device-to-host copy, .item(), nonzero, a stream synchronisation)
// raises a warning, which this handler counts instead of printing. Operations outside LibTorch
// (NCCL, MPI) are not seen. CUDA builds only (SWEEP_WITH_CUDA).
#pragma once

#include <c10/cuda/CUDAFunctions.h>
#include <c10/util/Exception.h>
#include <torch/version.h>

#include <cstdint>
#include <string>

namespace sweep::bench {

class CudaSyncCounter : public c10::WarningHandler {
 public:
  CudaSyncCounter() : previous_mode_(c10::cuda::warning_state().get_sync_debug_mode()), guard_(this) {
    c10::cuda::warning_state().set_sync_debug_mode(c10::cuda::SyncDebugMode::L_WARN);
  }
  ~CudaSyncCounter() override { c10::cuda::warning_state().set_sync_debug_mode(previous_mode_); }
  CudaSyncCounter(const CudaSyncCounter&) = delete;
  CudaSyncCounter& operator=(const CudaSyncCounter&) = delete;

#if TORCH_VERSION_MAJOR >= 2
  void process(const c10::Warning& warning) override { note(warning.msg()); }
#else
  void process(const c10::SourceLocation&, const std::string& msg, const bool) override { note(msg); }
#endif

  int64_t synchronizations() const { return count_; }

 private:
  void note(const std::string& msg) { count_ += msg.find("synchronizing CUDA operation") != std::string::npos; }

  c10::cuda::SyncDebugMode previous_mode_;
#if TORCH_VERSION_MAJOR >= 2
  c10::WarningUtils::WarningHandlerGuard guard_;
#else
  c10::Warning::WarningHandlerGuard guard_;
#endif
  int64_t count_ = 0;
};

}  // namespace sweep::bench
