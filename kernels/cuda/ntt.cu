// Radix-2 number-theoretic transforms over Fr, in place, on `batch`
// polynomials of n = 2^log_n coefficients stored one after another.
//
// Forward (coefficients -> evaluations at omega^j) is decimation in time:
//   ntt_bit_reverse   permute indices by bit reversal
//   ntt_block         the first min(log_n, SS_NTT_BLOCK_LOG) stages inside
//                     shared memory, one block per chunk, __syncthreads
//                     between stages
//   ntt_stage         each remaining stage, one thread per butterfly
// with twiddles tw[k] = omega^k, k < n/2, made by ntt_twiddles. The inverse
// uses omega^-1 and a scaling by n^-1 (poly_scale); coset transforms
// multiply coefficient i by g^i (poly_distribute_powers) first.
#include "field.cuh"

#define SS_NTT_BLOCK_LOG 9  // 512 elements (16 KiB) per block, 256 threads

SS_KERNEL void ntt_twiddles(Fr* __restrict__ tw, u32 half, Fr omega) {
    u32 k = blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= half) return;
    tw[k] = omega.pow_u64(k);
}

SS_HD u32 bit_reverse(u32 x, u32 bits) {
    u32 r = 0;
    for (u32 b = 0; b < bits; b++) {
        r = (r << 1) | (x & 1);
        x >>= 1;
    }
    return r;
}

SS_KERNEL void ntt_bit_reverse(Fr* __restrict__ data, u32 log_n, u32 batch) {
    u64 k = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    u64 n = 1ull << log_n;
    if (k >= n * batch) return;
    u32 i = (u32)(k & (n - 1));
    u32 j = bit_reverse(i, log_n);
    if (i < j) {
        Fr* poly = data + (k - i);
        Fr t = poly[i];
        poly[i] = poly[j];
        poly[j] = t;
    }
}

// Stages 1 ..= s_max of the transform (s_max = min(log_n, SS_NTT_BLOCK_LOG))
// on chunks of 2^s_max consecutive elements; blockDim.x = 2^(s_max-1).
SS_KERNEL_SYNC void ntt_block(Fr* __restrict__ data, u32 log_n, const Fr* __restrict__ tw) {
    __shared__ Fr chunk[1u << SS_NTT_BLOCK_LOG];
    u32 s_max = log_n < SS_NTT_BLOCK_LOG ? log_n : SS_NTT_BLOCK_LOG;
    u32 size = 1u << s_max;
    u32 t = threadIdx.x;
    Fr* base = data + (u64)blockIdx.x * size;
    chunk[t] = base[t];
    chunk[t + size / 2] = base[t + size / 2];
    __syncthreads();
    for (u32 s = 1; s <= s_max; s++) {
        u32 half = 1u << (s - 1);
        u32 pos = t & (half - 1);
        u32 i = ((t >> (s - 1)) << s) + pos;
        Fr w = tw[(u64)pos << (log_n - s)];
        Fr a = chunk[i];
        Fr b = chunk[i + half] * w;
        chunk[i] = a + b;
        chunk[i + half] = a - b;
        __syncthreads();
    }
    base[t] = chunk[t];
    base[t + size / 2] = chunk[t + size / 2];
}

// Stage s (> SS_NTT_BLOCK_LOG): one thread per butterfly, n/2 per polynomial.
SS_KERNEL void ntt_stage(Fr* __restrict__ data, u32 log_n, u32 s, const Fr* __restrict__ tw,
                                     u32 batch) {
    u64 k = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    u64 half_n = 1ull << (log_n - 1);
    if (k >= half_n * batch) return;
    u64 poly = k >> (log_n - 1);
    u32 t = (u32)(k & (half_n - 1));
    u32 half = 1u << (s - 1);
    u32 pos = t & (half - 1);
    u64 i = (poly << log_n) + ((u64)(t >> (s - 1)) << s) + pos;
    Fr w = tw[(u64)pos << (log_n - s)];
    Fr a = data[i];
    Fr b = data[i + half] * w;
    data[i] = a + b;
    data[i + half] = a - b;
}
