// Kernels that expose single field and curve operations, for the tests
// against halo2curves and for the resource report (one Fr multiplication
// per thread in fr_mul, whose SASS is counted).
#include "curve.cuh"

SS_KERNEL void fr_mul(const Fr* __restrict__ a, const Fr* __restrict__ b, Fr* __restrict__ out, u64 n) {
    u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = a[i] * b[i];
}

// Per element: a+b, a-b, a*b, -a, a^2, a^-1, from_mont(a) (canonical limbs),
// to_mont(from_mont(a)) (round trip) into out[8*i .. 8*i+7].
template <class F>
__device__ __forceinline__ void field_ops(const F* __restrict__ a, const F* __restrict__ b, F* __restrict__ out,
                                          u64 n) {
    u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    F x = a[i], y = b[i];
    F* o = out + 8 * i;
    o[0] = x + y;
    o[1] = x - y;
    o[2] = x * y;
    o[3] = -x;
    o[4] = x.sqr();
    o[5] = x.inverse();
    o[6] = x.from_mont();
    o[7] = x.from_mont().to_mont();
}

SS_KERNEL void fr_ops(const Fr* __restrict__ a, const Fr* __restrict__ b, Fr* __restrict__ out, u64 n) {
    field_ops(a, b, out, n);
}

SS_KERNEL void fq_ops(const Fq* __restrict__ a, const Fq* __restrict__ b, Fq* __restrict__ out, u64 n) {
    field_ops(a, b, out, n);
}

// Per pair of affine points: p+q (Jacobian+Jacobian), p+q (mixed),
// 2p, and k*p for k = low 32 bits of the canonical scalar k[i].
SS_KERNEL void g1_ops(const Affine* __restrict__ p, const Affine* __restrict__ q, const Fr* __restrict__ k,
                                  Jacobian* __restrict__ out, u64 n) {
    u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    Jacobian jp = Jacobian::from_affine(p[i]);
    Jacobian jq = Jacobian::from_affine(q[i]);
    Jacobian* o = out + 4 * i;
    o[0] = jp.add(jq);
    o[1] = jp.add_affine(q[i]);
    o[2] = jp.dbl();
    o[3] = jp.mul_u32(k[i].from_mont().v[0]);
}

// A deliberate race for the emulator's order test: each thread writes its
// slot of shared memory and reads its neighbour's without a barrier, so the
// result depends on the order threads run in. shift_synced is the same with
// the barrier, and must not depend on it. One block of n <= 256 threads;
// `salt` differs per launch so stale shared memory cannot pass for fresh.
SS_KERNEL void shift_racy(u32* __restrict__ out, u32 n, u32 salt) {
    __shared__ u32 slots[256];
    u32 t = threadIdx.x;
    slots[t] = t + salt;
    out[t] = slots[(t + 1) % n];
}

SS_KERNEL_SYNC void shift_synced(u32* __restrict__ out, u32 n, u32 salt) {
    __shared__ u32 slots[256];
    u32 t = threadIdx.x;
    slots[t] = t + salt;
    __syncthreads();
    out[t] = slots[(t + 1) % n];
}
