# A CPU LibTorch cannot link the NCCL backend, but where the CUDA toolkit's and NCCL's headers are
# at hand it can still compile it, its backend choice and its test (objects only, never linked).
find_path(SWEEP_CUDA_RUNTIME_INCLUDE cuda_runtime.h HINTS ENV CUDA_HOME PATHS /usr/local/cuda PATH_SUFFIXES include)
find_path(SWEEP_NCCL_INCLUDE nccl.h HINTS ENV NCCL_ROOT ${SWEEP_CUDA_RUNTIME_INCLUDE} PATH_SUFFIXES include)
find_path(SWEEP_C10_CUDA_INCLUDE c10/cuda/CUDAStream.h HINTS ${TORCH_INCLUDE_DIRS})
if(NOT (SWEEP_CUDA_RUNTIME_INCLUDE AND SWEEP_NCCL_INCLUDE AND SWEEP_C10_CUDA_INCLUDE))
  message(STATUS "NCCL backend: not built (no CUDA LibTorch); compile check skipped (no CUDA and NCCL headers)")
  return()
endif()
message(STATUS "NCCL backend: not built (no CUDA LibTorch); compile check against ${SWEEP_NCCL_INCLUDE}")

# A CUDA LibTorch installs this generated header; LibTorch's CPU packages ship c10/cuda without it.
set(generated ${CMAKE_CURRENT_BINARY_DIR}/nccl_compile_check)
if(NOT EXISTS ${SWEEP_C10_CUDA_INCLUDE}/c10/cuda/impl/cuda_cmake_macros.h)
  file(WRITE ${generated}/c10/cuda/impl/cuda_cmake_macros.h "#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n")
endif()

add_library(sweep_nccl_compile_check OBJECT
  ${CMAKE_SOURCE_DIR}/worker/nccl_communicator.cpp
  ${CMAKE_SOURCE_DIR}/worker/group_communicator.cpp
  test_nccl_collectives.cpp)
target_include_directories(sweep_nccl_compile_check SYSTEM PRIVATE ${SWEEP_CUDA_RUNTIME_INCLUDE} ${SWEEP_NCCL_INCLUDE} ${generated})
target_compile_definitions(sweep_nccl_compile_check PRIVATE SWEEP_WITH_NCCL)
target_link_libraries(sweep_nccl_compile_check PRIVATE sweep_mpi_test_support sweep_warnings)
