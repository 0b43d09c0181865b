// Multi-scalar multiplication sum_i s_i * P_i by Pippenger's bucket method.
//
// Scalars are split into `windows` signed digits of `c` bits (c is chosen by
// the host per call): digit d_w in (-2^(c-1), 2^(c-1)], a window's excess
// carried into the next one; the last window (one more than the 254 bits
// need) takes the final carry. A digit -d adds -P to bucket d, so a window
// has 2^(c-1) buckets (index 1 ..= 2^(c-1); index 0 is never used): half
// of what unsigned digits need. Buckets are laid out `bpw = 2^(c-1) + 1`
// per window. The host runs, in order (entry points of msm.cu, each over
// one template below):
//   msm_digits        one thread per scalar: digits, and a count per bucket
//   scan_u32          one block: exclusive prefix sum of the counts (offsets)
//   msm_scatter       one thread per (window, scalar): point index, with the
//                     digit's sign in bit 31, into its bucket's slot
//                     (counting sort; order inside a bucket is whatever the
//                     atomics give, the sums do not depend on it)
//   msm_chunks        one thread per bucket: its number of chunks of at most
//                     SS_CHUNK entries; scan_u32 gives their offsets
//   msm_accumulate    one thread per chunk: the sum of its (signed) points
//   then, while a bucket may still have more than one partial sum:
//   msm_chunks, scan_u32, msm_merge
//                     one thread per SS_CHUNK partial sums of one bucket
//   msm_gather        one thread per bucket: its one partial sum, or zero
//   msm_reduce        `segments` blocks per window: sum_b b * S_b by
//                     segmented running sums, combined in shared memory
//   msm_combine       one thread: each window's segments added, then Horner
//                     over the windows (c doublings each)
// So no thread adds more than SS_CHUNK points or partial sums, however the
// scalars fall: all-equal scalars (one bucket per window holds every point,
// as halo2's selector and fixed columns give) take more merge rounds
// (log_SS_CHUNK n), not longer chains.
//
// The templates take S, a scalar (8 little-endian 32-bit limbs `v`, with
// from_mont()), A, an affine point (coordinate `y`, negatable), and J, a
// Jacobian point (identity(), add(), add_affine(), dbl(), mul_u32()).
#pragma once
#include "common.cuh"

#define SS_REDUCE_THREADS 128
#define SS_SCAN_THREADS 256
#define SS_CHUNK 32

// The c bits of s from bit `bit` (0 past the scalar's 256 bits).
template <class S>
SS_HD u32 window_bits(const S& s, u32 bit, u32 c) {
    u32 limb = bit >> 5, shift = bit & 31;
    if (limb >= 8) return 0;
    u64 lo = s.v[limb];
    u64 hi = limb + 1 < 8 ? s.v[limb + 1] : 0;
    return (u32)(((hi << 32) | lo) >> shift) & ((1u << c) - 1);
}

// Scalar i's signed digits into digits[w * n + i] (the sign in bit 31), and
// a count per non-zero digit's bucket.
template <class S>
SS_DEV void signed_digits(const S* scalars, u32 n, u32 c, u32 windows, u32* digits, u32* counts, u32 i) {
    if (i >= n) return;
    S s = scalars[i].from_mont();
    u32 half = 1u << (c - 1), bpw = half + 1;
    u32 carry = 0;
    for (u32 w = 0; w < windows; w++) {
        u32 v = window_bits(s, w * c, c) + carry;  // <= 2^c
        u32 d, neg;
        if (w + 1 < windows && v > half) {
            d = (1u << c) - v;  // v - 2^c = -d, and 2^c carried
            neg = 1;
            carry = 1;
        } else {
            d = v;
            neg = 0;
            carry = 0;
        }
        digits[(u64)w * n + i] = d == 0 ? 0 : (d | (neg << 31));
        if (d != 0) atomicAdd(&counts[w * bpw + d], 1u);
    }
}

// Exclusive prefix sum of counts[0..len) into offsets[0..len] (offsets[len]
// is the total) and a copy into cursor[0..len), by thread t of one block of
// SS_SCAN_THREADS threads: each sums a contiguous chunk, the chunk totals
// are scanned in shared memory, then each thread writes its chunk.
SS_DEV void exclusive_scan(const u32* counts, u32 len, u32* offsets, u32* cursor, u32 t) {
    __shared__ u32 partial[SS_SCAN_THREADS];
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

// Entry k = w * n + i of the counting sort: point index i, with its digit's
// sign in bit 31, into the next free slot of its bucket.
SS_DEV void scatter_digit(const u32* digits, u32 n, u32 c, u32 windows, u32* cursor, u32* sorted, u64 k) {
    if (k >= (u64)windows * n) return;
    u32 w = (u32)(k / n), i = (u32)(k % n);
    u32 d = digits[k];
    if (d == 0) return;
    u32 bpw = (1u << (c - 1)) + 1;
    u32 pos = atomicAdd(&cursor[w * bpw + (d & 0x7fffffffu)], 1u);
    sorted[pos] = i | (d & 0x80000000u);
}

// chunks[b] = the number of SS_CHUNK-sized pieces of bucket b's entries
// [offsets[b], offsets[b + 1]).
SS_HD void count_chunks(const u32* offsets, u32 buckets, u32* chunks, u32 b) {
    if (b >= buckets) return;
    chunks[b] = (offsets[b + 1] - offsets[b] + SS_CHUNK - 1) / SS_CHUNK;
}

// The bucket whose chunks [starts[b], starts[b + 1]) hold chunk g (starts
// non-decreasing, g < starts[buckets]).
SS_HD u32 bucket_of(const u32* starts, u32 buckets, u32 g) {
    u32 lo = 0, hi = buckets;  // starts[lo] <= g < starts[hi]
    while (hi - lo > 1) {
        u32 mid = lo + (hi - lo) / 2;
        if (starts[mid] <= g) lo = mid; else hi = mid;
    }
    return lo;
}

// Thread g (< `most`, an upper bound on the chunks) sums chunk g: at most
// SS_CHUNK of its bucket's points, negated where the digit was.
template <class A, class J>
SS_HD void accumulate_chunk(const A* points, const u32* sorted, const u32* offsets, const u32* starts, u32 buckets,
                            u32 most, J* partials, u32 g) {
    if (g >= most || g >= starts[buckets]) return;
    u32 b = bucket_of(starts, buckets, g);
    u32 lo = offsets[b] + (g - starts[b]) * SS_CHUNK;
    u32 hi = lo + SS_CHUNK < offsets[b + 1] ? lo + SS_CHUNK : offsets[b + 1];
    J acc = J::identity();
    for (u32 k = lo; k < hi; k++) {
        u32 e = sorted[k];
        A p = points[e & 0x7fffffffu];
        if (e >> 31) p.y = -p.y;
        acc = acc.add_affine(p);
    }
    partials[g] = acc;
}

// One merge round, thread g: bucket b's partial sums in[from[b] ..
// from[b + 1]) become out[to[b] .. to[b + 1]), each the sum of at most
// SS_CHUNK of them.
template <class J>
SS_HD void merge_chunk(const J* in, const u32* from, const u32* to, u32 buckets, u32 most, J* out, u32 g) {
    if (g >= most || g >= to[buckets]) return;
    u32 b = bucket_of(to, buckets, g);
    u32 lo = from[b] + (g - to[b]) * SS_CHUNK;
    u32 hi = lo + SS_CHUNK < from[b + 1] ? lo + SS_CHUNK : from[b + 1];
    J acc = J::identity();
    for (u32 k = lo; k < hi; k++) acc = acc.add(in[k]);
    out[g] = acc;
}

// sums[b] = bucket b's one partial sum, or the identity when it is empty.
template <class J>
SS_HD void gather_bucket(const J* partials, const u32* starts, u32 buckets, J* sums, u32 b) {
    if (b >= buckets) return;
    sums[b] = starts[b + 1] > starts[b] ? partials[starts[b]] : J::identity();
}

// Window sums W = sum_{b=1}^{2^(c-1)} b * S_b, each window's buckets split
// over `segments` blocks (block w * segments + s: segment s of window w),
// so that the reduction fills the GPU whatever the number of windows.
// Thread t of the window's segments * SS_REDUCE_THREADS takes the buckets
// [lo, hi): running sums from the top give sum (b - lo + 1) * S_b and the
// segment total T; its share is that plus (lo - 1) * T. Thread 0 of a block
// adds its threads' shares in a fixed order into shares[block]; msm_combine
// adds a window's blocks. Called by thread t of block `block`.
template <class J>
SS_DEV void reduce_segment(const J* buckets, u32 c, u32 segments, J* shares, u32 block, u32 t) {
    __shared__ J share[SS_REDUCE_THREADS];
    u32 w = block / segments, s = block % segments;
    u32 count = 1u << (c - 1);  // buckets 1 ..= count
    u32 bpw = count + 1;
    u32 threads = segments * SS_REDUCE_THREADS;
    u32 per = (count + threads - 1) / threads;
    u32 lo = 1 + (s * SS_REDUCE_THREADS + t) * per;
    u32 hi = lo + per <= count + 1 ? lo + per : count + 1;
    J run = J::identity();
    J acc = J::identity();
    const J* base = buckets + (u64)w * bpw;
    for (u32 b = hi; b > lo; b--) {
        run = run.add(base[b - 1]);
        acc = acc.add(run);
    }
    if (lo < hi) acc = acc.add(run.mul_u32(lo - 1));
    share[t] = acc;
    __syncthreads();
    if (t == 0) {
        J total = share[0];
        for (u32 k = 1; k < SS_REDUCE_THREADS; k++) total = total.add(share[k]);
        shares[block] = total;
    }
}

// Window w's sum: its segments' shares.
template <class J>
SS_HD J window_sum(const J* shares, u32 segments, u32 w) {
    J sum = shares[(u64)w * segments];
    for (u32 s = 1; s < segments; s++) sum = sum.add(shares[(u64)w * segments + s]);
    return sum;
}

// The result, by one thread: the window sums combined by Horner (c
// doublings per window, from the top).
template <class J>
SS_HD void combine_windows(const J* shares, u32 c, u32 windows, u32 segments, J* result) {
    J acc = window_sum(shares, segments, windows - 1);
    for (u32 w = windows - 1; w > 0; w--) {
        for (u32 k = 0; k < c; k++) acc = acc.dbl();
        acc = acc.add(window_sum(shares, segments, w - 1));
    }
    result[0] = acc;
}
