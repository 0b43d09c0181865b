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
