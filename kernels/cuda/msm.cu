// Multi-scalar multiplication sum_i s_i * P_i by Pippenger's bucket method.
//
// Scalars are split into `windows` unsigned digits of `c` bits (c is chosen
// by the host per call). Per window there are 2^c buckets; bucket 0 is
// never used. The host runs, in order:
//   msm_digits      one thread per scalar: digits, and a count per bucket
//   scan_u32        one block: exclusive prefix sum of the counts (offsets)
//   msm_scatter     one thread per (window, scalar): point index into its
//                   bucket's slot (counting sort; order inside a bucket is
//                   whatever the atomics give, the sums do not depend on it)
//   msm_accumulate  one thread per bucket: sum of its points (mixed adds)
//   msm_reduce      one block per window: sum_b b * S_b by segmented
//                   running sums, segments combined in shared memory
//   msm_combine     one thread: Horner over the windows (c doublings each)
#include "curve.cuh"

#define SS_REDUCE_THREADS 128
#define SS_SCAN_THREADS 256

SS_KERNEL void msm_digits(const Fr* __restrict__ scalars, u32 n, u32 c, u32 windows,
                                      u32* __restrict__ digits, u32* __restrict__ counts) {
    u32 i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    Fr s = scalars[i].from_mont();
    u32 buckets = 1u << c;
    for (u32 w = 0; w < windows; w++) {
        u32 bit = w * c;
        u32 limb = bit >> 5, shift = bit & 31;
        u64 lo = s.v[limb];
        u64 hi = limb + 1 < 8 ? s.v[limb + 1] : 0;
        u32 d = (u32)(((hi << 32) | lo) >> shift) & (buckets - 1);
        digits[(u64)w * n + i] = d;
        if (d != 0) atomicAdd(&counts[w * buckets + d], 1u);
    }
}

// Exclusive prefix sum of counts[0..len) into offsets[0..len] (offsets[len]
// is the total) and a copy into cursor[0..len). One block of
// SS_SCAN_THREADS threads: each sums a contiguous chunk, the chunk totals are
// scanned in shared memory, then each thread writes its chunk.
SS_KERNEL void scan_u32(const u32* __restrict__ counts, u32 len, u32* __restrict__ offsets,
                                    u32* __restrict__ cursor) {
    __shared__ u32 partial[SS_SCAN_THREADS];
    u32 t = threadIdx.x;
    u32 chunk = (len + SS_SCAN_THREADS - 1) / SS_SCAN_THREADS;
    u32 lo = t * chunk < len ? t * chunk : len;
    u32 hi = lo + chunk < len ? lo + chunk : len;
    u32 sum = 0;
    for (u32 k = lo; k < hi; k++) sum += counts[k];
    partial[t] = sum;
    __syncthreads();
    // Hillis-Steele inclusive scan over the chunk totals.
    for (u32 step = 1; step < SS_SCAN_THREADS; step <<= 1) {
        u32 add = t >= step ? partial[t - step] : 0;
        __syncthreads();
        partial[t] += add;
        __syncthreads();
    }
    u32 run = t == 0 ? 0 : partial[t - 1];
    for (u32 k = lo; k < hi; k++) {
        offsets[k] = run;
        cursor[k] = run;
        run += counts[k];
    }
    if (t == SS_SCAN_THREADS - 1) offsets[len] = partial[t];
}

SS_KERNEL void msm_scatter(const u32* __restrict__ digits, u32 n, u32 c, u32 windows,
                                       u32* __restrict__ cursor, u32* __restrict__ sorted) {
    u64 k = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= (u64)windows * n) return;
    u32 w = (u32)(k / n), i = (u32)(k % n);
    u32 d = digits[k];
    if (d == 0) return;
    u32 pos = atomicAdd(&cursor[(w << c) + d], 1u);
    sorted[pos] = i;
}

SS_KERNEL void msm_accumulate(const Affine* __restrict__ points, const u32* __restrict__ sorted,
                                          const u32* __restrict__ offsets, u32 c, u32 windows,
                                          Jacobian* __restrict__ buckets) {
    u32 b = blockIdx.x * blockDim.x + threadIdx.x;
    if (b >= (windows << c)) return;
    Jacobian acc = Jacobian::identity();
    for (u32 k = offsets[b]; k < offsets[b + 1]; k++) acc = acc.add_affine(points[sorted[k]]);
    buckets[b] = acc;
}

// Window sum W = sum_{b=1}^{2^c-1} b * S_b. Thread t takes the buckets
// [lo, hi): running sums from the top give sum (b - lo + 1) * S_b and the
// segment total T; its share is that plus (lo - 1) * T. Thread 0 adds the
// shares in a fixed order.
SS_KERNEL void msm_reduce(const Jacobian* __restrict__ buckets, u32 c,
                                      Jacobian* __restrict__ window_sums) {
    __shared__ Jacobian share[SS_REDUCE_THREADS];
    u32 w = blockIdx.x, t = threadIdx.x;
    u32 count = (1u << c) - 1;  // buckets 1 ..= count
    u32 per = (count + SS_REDUCE_THREADS - 1) / SS_REDUCE_THREADS;
    u32 lo = 1 + t * per;
    u32 hi = lo + per <= count + 1 ? lo + per : count + 1;
    Jacobian run = Jacobian::identity();
    Jacobian acc = Jacobian::identity();
    const Jacobian* base = buckets + ((u64)w << c);
    for (u32 b = hi; b > lo; b--) {
        run = run.add(base[b - 1]);
        acc = acc.add(run);
    }
    if (lo < hi) acc = acc.add(run.mul_u32(lo - 1));
    share[t] = acc;
    __syncthreads();
    if (t == 0) {
        Jacobian total = share[0];
        for (u32 k = 1; k < SS_REDUCE_THREADS; k++) total = total.add(share[k]);
        window_sums[w] = total;
    }
}

SS_KERNEL void msm_combine(const Jacobian* __restrict__ window_sums, u32 c, u32 windows,
                                       Jacobian* __restrict__ result) {
    if (blockIdx.x != 0 || threadIdx.x != 0) return;
    Jacobian acc = window_sums[windows - 1];
    for (u32 w = windows - 1; w > 0; w--) {
        for (u32 k = 0; k < c; k++) acc = acc.dbl();
        acc = acc.add(window_sums[w - 1]);
    }
    result[0] = acc;
}
