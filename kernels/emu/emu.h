// CPU SIMT emulator: the CUDA dialect the kernel sources use, for the host
// C++ compiler (DESIGN.md §5, build 3). Included by common.cuh only when no
// CUDA compiler is at work: in each module's translation unit (build.rs
// compiles every kernels/cuda/<module>.cu on its own) and in emu.cpp, the
// runtime.
//
// A launch runs every block of the grid; blocks are spread over OS worker
// threads. Inside a block each CUDA thread is a cooperative fiber (ucontext)
// with its own stack; __syncthreads() switches back to the block's scheduler,
// which resumes the next fiber, and releases the barrier once every live
// fiber of the block has reached it. Kernels registered without barriers run
// their threads as plain calls (no fiber, no switch). __shared__ variables
// are thread_local statics: one copy per OS worker thread (for one in a
// header's template or inline function, one per instantiation, however many
// modules use it), which runs one block at a time, so the block's fibers
// share it exactly as on a GPU.
#pragma once

#include <cstddef>
#include <cstdint>

struct dim3 {
    unsigned int x, y, z;
};

namespace ss_emu {

// What the running CUDA thread sees: set by the scheduler before it resumes a
// fiber or calls a thread.
struct ThreadState {
    dim3 thread_idx, block_idx, block_dim, grid_dim;
};

ThreadState& current();
void syncthreads();

}  // namespace ss_emu

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __restrict__ __restrict
#define __shared__ static thread_local

#define threadIdx (::ss_emu::current().thread_idx)
#define blockIdx (::ss_emu::current().block_idx)
#define blockDim (::ss_emu::current().block_dim)
#define gridDim (::ss_emu::current().grid_dim)

inline void __syncthreads() { ::ss_emu::syncthreads(); }

// Device atomics: the emulator runs blocks on several OS threads at once.
inline unsigned int atomicAdd(unsigned int* address, unsigned int val) {
    return __atomic_fetch_add(address, val, __ATOMIC_RELAXED);
}
inline unsigned long long atomicAdd(unsigned long long* address, unsigned long long val) {
    return __atomic_fetch_add(address, val, __ATOMIC_RELAXED);
}
inline unsigned int atomicMax(unsigned int* address, unsigned int val) {
    unsigned int old = __atomic_load_n(address, __ATOMIC_RELAXED);
    while (old < val && !__atomic_compare_exchange_n(address, &old, val, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
    return old;
}
inline unsigned int atomicCAS(unsigned int* address, unsigned int compare, unsigned int val) {
    __atomic_compare_exchange_n(address, &compare, val, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
    return compare;
}
