// Kernels that expose single field and curve operations, for the tests
// against halo2curves and for the resource report (one Fr multiplication
// per thread in fr_mul, whose SASS is counted); the operations:
// selftest.cuh.
#include "curve.cuh"
#include "poly.cuh"
#include "selftest.cuh"

SS_KERNEL void fr_mul(const Fr* __restrict__ a, const Fr* __restrict__ b, Fr* __restrict__ out, u64 n) {
    elementwise(out, n, grid_thread<u64>(), [=](u64 i) { return a[i] * b[i]; });
}

SS_KERNEL void fr_ops(const Fr* __restrict__ a, const Fr* __restrict__ b, Fr* __restrict__ out, u64 n) {
    field_ops(a, b, out, n, grid_thread<u64>());
}

SS_KERNEL void fq_ops(const Fq* __restrict__ a, const Fq* __restrict__ b, Fq* __restrict__ out, u64 n) {
    field_ops(a, b, out, n, grid_thread<u64>());
}

SS_KERNEL void g1_ops(const Affine* __restrict__ p, const Affine* __restrict__ q, const Fr* __restrict__ k,
                      Jacobian* __restrict__ out, u64 n) {
    curve_ops(p, q, k, out, n, grid_thread<u64>());
}

// The emulator's order test: shift_racy must depend on the order threads
// run in, shift_synced (the same with the barrier) must not.
SS_KERNEL void shift_racy(u32* __restrict__ out, u32 n, u32 salt) {
    shift_neighbour<false>(out, n, salt, threadIdx.x);
}

SS_KERNEL_SYNC void shift_synced(u32* __restrict__ out, u32 n, u32 salt) {
    shift_neighbour<true>(out, n, salt, threadIdx.x);
}
