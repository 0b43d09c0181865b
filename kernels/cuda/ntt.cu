// Entry points of the radix-2 NTT over Fr (the transform and its steps:
// ntt.cuh).
#include "field.cuh"
#include "ntt.cuh"

SS_KERNEL void ntt_twiddles(Fr* __restrict__ tw, u32 half, Fr omega) {
    twiddle(tw, half, omega, grid_thread<u32>());
}

SS_KERNEL void ntt_bit_reverse(Fr* __restrict__ data, u32 log_n, u32 batch) {
    bit_reverse_swap(data, log_n, batch, grid_thread<u64>());
}

SS_KERNEL_SYNC void ntt_block(Fr* __restrict__ data, u32 log_n, const Fr* __restrict__ tw) {
    ntt_shared_stages(data, log_n, tw, blockIdx.x, threadIdx.x);
}

SS_KERNEL void ntt_stage(Fr* __restrict__ data, u32 log_n, u32 s, const Fr* __restrict__ tw, u32 batch) {
    ntt_global_stage(data, log_n, s, tw, batch, grid_thread<u64>());
}
