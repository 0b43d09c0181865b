// Portability layer shared by the three builds of every kernel source
// (DESIGN.md §5): nvcc, NVRTC, and the host C++ compiler with the CPU SIMT
// emulator. Kernel sources use only what is defined here and standard CUDA
// qualifiers/built-ins that emu.h provides on the host: no CUDA headers, no
// C++ standard library (NVRTC has neither), no inline PTX, no warp
// intrinsics.
#pragma once

#if !defined(__CUDACC__)
#include "emu.h"
#endif

typedef unsigned int u32;
typedef unsigned long long u64;

#define SS_HD __host__ __device__ __forceinline__

// A kernel entry point: an unmangled symbol for cuModuleGetFunction on the
// GPU; in the emulator, where every module is one translation unit with the
// launch table, a file-local function (no global C symbols such as
// `poly_add` to clash with other libraries).
#if defined(__CUDACC__)
#define SS_KERNEL extern "C" __global__
#else
#define SS_KERNEL static
#endif
// An entry point that calls __syncthreads(): the same, marked so that the
// emulator runs its threads as fibers (build.rs reads the marks).
#define SS_KERNEL_SYNC SS_KERNEL
