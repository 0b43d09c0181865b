// Single field and curve operations per thread, for the tests against
// halo2curves, and the emulator's order test.
#pragma once
#include "common.cuh"

// Element i: a+b, a-b, a*b, -a, a^2, a^-1, from_mont(a) (canonical limbs),
// to_mont(from_mont(a)) (round trip) into out[8*i .. 8*i+7].
template <class F>
SS_HD void field_ops(const F* a, const F* b, F* out, u64 n, u64 i) {
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

// Pair i of affine points: p+q (Jacobian+Jacobian), p+q (mixed), 2p, and
// k*p for k = low 32 bits of the canonical scalar k[i], into
// out[4*i .. 4*i+3].
template <class A, class J, class S>
SS_HD void curve_ops(const A* p, const A* q, const S* k, J* out, u64 n, u64 i) {
    if (i >= n) return;
    J jp = J::from_affine(p[i]);
    J jq = J::from_affine(q[i]);
    J* o = out + 4 * i;
    o[0] = jp.add(jq);
    o[1] = jp.add_affine(q[i]);
    o[2] = jp.dbl();
    o[3] = jp.mul_u32(k[i].from_mont().v[0]);
}

// Thread t of one block of n <= 256 writes its slot of shared memory
// (t + salt) and reads its neighbour's into out[t]: with Sync, after a
// barrier; without, a deliberate race whose result depends on the order
// threads run in. `salt` differs per launch so stale shared memory cannot
// pass for fresh.
template <bool Sync>
SS_DEV void shift_neighbour(u32* out, u32 n, u32 salt, u32 t) {
    __shared__ u32 slots[256];
    slots[t] = t + salt;
    if constexpr (Sync) __syncthreads();
    out[t] = slots[(t + 1) % n];
}
