// Portability layer shared by the three builds of every kernel source
// (DESIGN.md §5): nvcc, NVRTC, and the host C++ compiler with the CPU SIMT
// emulator. Kernel sources use only what is defined here and standard CUDA
// qualifiers/built-ins that emu.h provides on the host: no CUDA headers, no
// C++ standard library (NVRTC has neither), no inline PTX, no warp
// intrinsics.
//
// Layout: the algorithms are templates in headers (`<module>.cuh`, over the
// field and point types), `SS_HD` where they are plain per-thread code and
// `SS_DEV` where they use atomics, shared memory or barriers; they take the
// thread and block indices from their caller. A module `<module>.cu` holds
// only includes and thin entry points, each one call instantiating the
// templates with Fr, Fq, Affine, Jacobian. Everything a header defines is a
// template, inline or constexpr, so every module may include it.
#pragma once

#if !defined(__CUDACC__)
#include "emu.h"
#endif

typedef unsigned int u32;
typedef unsigned long long u64;

#define SS_HD __host__ __device__ __forceinline__
#define SS_DEV __device__ __forceinline__

// A kernel entry point: an unmangled symbol for cuModuleGetFunction on the
// GPU; in the emulator, where build.rs compiles every module as its own
// translation unit (as nvcc does), an ordinary external C++ function, whose
// mangled name (parameter types included) cannot clash with a C symbol such
// as another library's `poly_add`.
#if defined(__CUDACC__)
#define SS_KERNEL extern "C" __global__
#else
#define SS_KERNEL
#endif
// An entry point that calls __syncthreads(): the same, marked so that the
// emulator runs its threads as fibers (build.rs reads the marks).
#define SS_KERNEL_SYNC SS_KERNEL

// The calling thread's index in a one-dimensional grid, computed in I (u32,
// or u64 where the grid may cover 2^32 elements or more).
template <class I>
SS_DEV I grid_thread() {
    return (I)blockIdx.x * blockDim.x + threadIdx.x;
}
