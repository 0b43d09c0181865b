// Entry points of the Pippenger MSM over BN254 G1 (the algorithm, its steps
// and their order: msm.cuh).
#include "curve.cuh"
#include "msm.cuh"

SS_KERNEL void msm_digits(const Fr* __restrict__ scalars, u32 n, u32 c, u32 windows, u32* __restrict__ digits,
                          u32* __restrict__ counts) {
    signed_digits(scalars, n, c, windows, digits, counts, grid_thread<u32>());
}

SS_KERNEL_SYNC void scan_u32(const u32* __restrict__ counts, u32 len, u32* __restrict__ offsets,
                             u32* __restrict__ cursor) {
    exclusive_scan(counts, len, offsets, cursor, threadIdx.x);
}

SS_KERNEL void msm_scatter(const u32* __restrict__ digits, u32 n, u32 c, u32 windows, u32* __restrict__ cursor,
                           u32* __restrict__ sorted) {
    scatter_digit(digits, n, c, windows, cursor, sorted, grid_thread<u64>());
}

SS_KERNEL void msm_chunks(const u32* __restrict__ offsets, u32 buckets, u32* __restrict__ chunks) {
    count_chunks(offsets, buckets, chunks, grid_thread<u32>());
}

SS_KERNEL void msm_accumulate(const Affine* __restrict__ points, const u32* __restrict__ sorted,
                              const u32* __restrict__ offsets, const u32* __restrict__ starts, u32 buckets, u32 most,
                              Jacobian* __restrict__ partials) {
    accumulate_chunk(points, sorted, offsets, starts, buckets, most, partials, grid_thread<u32>());
}

SS_KERNEL void msm_merge(const Jacobian* __restrict__ in, const u32* __restrict__ from, const u32* __restrict__ to,
                         u32 buckets, u32 most, Jacobian* __restrict__ out) {
    merge_chunk(in, from, to, buckets, most, out, grid_thread<u32>());
}

SS_KERNEL void msm_gather(const Jacobian* __restrict__ partials, const u32* __restrict__ starts, u32 buckets,
                          Jacobian* __restrict__ sums) {
    gather_bucket(partials, starts, buckets, sums, grid_thread<u32>());
}

SS_KERNEL_SYNC void msm_reduce(const Jacobian* __restrict__ buckets, u32 c, u32 segments,
                               Jacobian* __restrict__ shares) {
    reduce_segment(buckets, c, segments, shares, blockIdx.x, threadIdx.x);
}

SS_KERNEL void msm_combine(const Jacobian* __restrict__ shares, u32 c, u32 windows, u32 segments,
                           Jacobian* __restrict__ result) {
    if (grid_thread<u64>() == 0) combine_windows(shares, c, windows, segments, result);
}
