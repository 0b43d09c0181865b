// Radix-2 number-theoretic transforms, in place, on `batch` polynomials of
// n = 2^log_n coefficients stored one after another, over a field F.
//
// Forward (coefficients -> evaluations at omega^j) is decimation in time
// (entry points of ntt.cu):
//   ntt_bit_reverse   permute indices by bit reversal
//   ntt_block         the first min(log_n, SS_NTT_BLOCK_LOG) stages inside
//                     shared memory, one block per chunk, __syncthreads
//                     between stages
//   ntt_stage         each remaining stage, one thread per butterfly
// with twiddles tw[k] = omega^k, k < n/2, made by ntt_twiddles. The inverse
// uses omega^-1 and a scaling by n^-1 (poly_scale); coset transforms
// multiply coefficient i by g^i (poly_distribute_powers) first.
#pragma once
#include "common.cuh"

#define SS_NTT_BLOCK_LOG 9  // 512 elements (16 KiB) per block, 256 threads

// tw[k] = omega^k for k < half.
template <class F>
SS_HD void twiddle(F* tw, u32 half, const F& omega, u32 k) {
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

// Element k of the batch swapped with its bit-reversed partner (once per
// pair: by the smaller index).
template <class F>
SS_HD void bit_reverse_swap(F* data, u32 log_n, u32 batch, u64 k) {
    u64 n = 1ull << log_n;
    if (k >= n * batch) return;
    u32 i = (u32)(k & (n - 1));
    u32 j = bit_reverse(i, log_n);
    if (i < j) {
        F* poly = data + (k - i);
        F t = poly[i];
        poly[i] = poly[j];
        poly[j] = t;
    }
}

// Butterfly t (< n/2) of stage s on the polynomial x of n = 2^log_n
// coefficients: x[i], x[i + 2^(s-1)] with twiddle omega^(pos * n / 2^s).
template <class F>
SS_HD void butterfly(F* x, u32 log_n, u32 s, const F* tw, u32 t) {
    u32 half = 1u << (s - 1);
    u32 pos = t & (half - 1);
    u32 i = ((t >> (s - 1)) << s) + pos;
    F w = tw[(u64)pos << (log_n - s)];
    F a = x[i];
    F b = x[i + half] * w;
    x[i] = a + b;
    x[i + half] = a - b;
}

// Stages 1 ..= s_max of the transform (s_max = min(log_n, SS_NTT_BLOCK_LOG))
// on chunks of 2^s_max consecutive elements, by thread t of block `block`
// (which transforms chunk `block`); blockDim.x = 2^(s_max-1).
template <class F>
SS_DEV void ntt_shared_stages(F* data, u32 log_n, const F* tw, u32 block, u32 t) {
    __shared__ F chunk[1u << SS_NTT_BLOCK_LOG];
    u32 s_max = log_n < SS_NTT_BLOCK_LOG ? log_n : SS_NTT_BLOCK_LOG;
    u32 size = 1u << s_max;
    F* base = data + (u64)block * size;
    chunk[t] = base[t];
    chunk[t + size / 2] = base[t + size / 2];
    __syncthreads();
    for (u32 s = 1; s <= s_max; s++) {
        butterfly(chunk, log_n, s, tw, t);
        __syncthreads();
    }
    base[t] = chunk[t];
    base[t + size / 2] = chunk[t + size / 2];
}

// Stage s (> SS_NTT_BLOCK_LOG): butterfly k of the batch, n/2 per polynomial.
template <class F>
SS_HD void ntt_global_stage(F* data, u32 log_n, u32 s, const F* tw, u32 batch, u64 k) {
    u64 half_n = 1ull << (log_n - 1);
    if (k >= half_n * batch) return;
    u64 poly = k >> (log_n - 1);
    butterfly(data + (poly << log_n), log_n, s, tw, (u32)(k & (half_n - 1)));
}
