// Element-wise kernels over Fr vectors of length n (one thread per element
// unless stated), the building blocks of the prover's polynomial arithmetic.
// Outputs may alias inputs unless stated (no __restrict__ there).
#include "field.cuh"

#define SS_ELEMENTWISE(name, expr)                                                                \
    SS_KERNEL void name(Fr* out, const Fr* a, const Fr* b, u64 n) {                 \
        u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;                                     \
        if (i < n) out[i] = expr;                                                               \
    }

SS_ELEMENTWISE(poly_add, a[i] + b[i])
SS_ELEMENTWISE(poly_sub, a[i] - b[i])
SS_ELEMENTWISE(poly_mul, a[i] * b[i])

// out[i] = a[i] * s
SS_KERNEL void poly_scale(Fr* out, const Fr* a, Fr s, u64 n) {
    u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = a[i] * s;
}

// a[i] *= g^(i mod n) for `batch` polynomials of n coefficients each: moves
// a polynomial onto the coset g*H before a forward NTT (and back with g^-1
// after an inverse one).
SS_KERNEL void poly_distribute_powers(Fr* __restrict__ a, Fr g, u64 n, u32 batch) {
    u64 k = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= n * batch) return;
    a[k] = a[k] * g.pow_u64(k % n);
}

// out[i] = a[i]^-1 by Montgomery's trick over chunks of `chunk` elements,
// one thread per chunk: prefix products into `out`, one Fermat inversion,
// then back to front. Zeros map to zero (as ff's BatchInvert leaves them).
// `out` and `a` must not overlap.
SS_KERNEL void poly_batch_invert(Fr* __restrict__ out, const Fr* __restrict__ a, u64 n, u32 chunk) {
    u64 t = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    u64 lo = t * chunk;
    if (lo >= n) return;
    u64 hi = lo + chunk < n ? lo + chunk : n;
    Fr acc = Fr::one();
    for (u64 k = lo; k < hi; k++) {
        out[k] = acc;  // product of the non-zero elements before k
        if (!a[k].is_zero()) acc = acc * a[k];
    }
    Fr inv = acc.inverse();  // (product of the chunk's non-zero elements)^-1
    for (u64 k = hi; k > lo; k--) {
        const Fr x = a[k - 1];
        if (x.is_zero()) {
            out[k - 1] = Fr::zero();
            continue;
        }
        Fr x_inv = inv * out[k - 1];
        inv = inv * x;
        out[k - 1] = x_inv;
    }
}
