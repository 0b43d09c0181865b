// Entry points of the element-wise kernels over Fr vectors of length n (the
// algorithms: poly.cuh). Outputs may alias inputs unless stated (no
// __restrict__ there).
#include "field.cuh"
#include "poly.cuh"

SS_KERNEL void poly_add(Fr* out, const Fr* a, const Fr* b, u64 n) {
    elementwise(out, n, grid_thread<u64>(), [=](u64 i) { return a[i] + b[i]; });
}

SS_KERNEL void poly_sub(Fr* out, const Fr* a, const Fr* b, u64 n) {
    elementwise(out, n, grid_thread<u64>(), [=](u64 i) { return a[i] - b[i]; });
}

SS_KERNEL void poly_mul(Fr* out, const Fr* a, const Fr* b, u64 n) {
    elementwise(out, n, grid_thread<u64>(), [=](u64 i) { return a[i] * b[i]; });
}

// out[i] = a[i] * s
SS_KERNEL void poly_scale(Fr* out, const Fr* a, Fr s, u64 n) {
    elementwise(out, n, grid_thread<u64>(), [=](u64 i) { return a[i] * s; });
}

SS_KERNEL void poly_distribute_powers(Fr* __restrict__ a, Fr g, u64 n, u32 batch) {
    distribute_powers(a, g, n, batch, grid_thread<u64>());
}

SS_KERNEL void poly_batch_invert(Fr* __restrict__ out, const Fr* __restrict__ a, u64 n, u32 chunk) {
    batch_invert(out, a, n, chunk, grid_thread<u64>());
}
