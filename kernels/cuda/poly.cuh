// Element-wise algorithms over vectors of field elements (one thread per
// element unless stated), the building blocks of the prover's polynomial
// arithmetic. Outputs may alias inputs unless stated.
#pragma once
#include "common.cuh"

// out[i] = value(i) for element i < n: the body of the element-wise kernels,
// each of which gives its value as a lambda over the index.
template <class F, class Value>
SS_HD void elementwise(F* out, u64 n, u64 i, Value value) {
    if (i < n) out[i] = value(i);
}

// a[k] *= g^(k mod n), element k of `batch` polynomials of n coefficients
// each: moves a polynomial onto the coset g*H before a forward NTT (and back
// with g^-1 after an inverse one).
template <class F>
SS_HD void distribute_powers(F* a, const F& g, u64 n, u32 batch, u64 k) {
    if (k >= n * batch) return;
    a[k] = a[k] * g.pow_u64(k % n);
}

// out[i] = a[i]^-1 by Montgomery's trick over chunks of `chunk` elements,
// one thread per chunk (thread t takes chunk t): prefix products into `out`,
// one Fermat inversion, then back to front. Zeros map to zero (as ff's
// BatchInvert leaves them). `out` and `a` must not overlap.
template <class F>
SS_HD void batch_invert(F* out, const F* a, u64 n, u32 chunk, u64 t) {
    u64 lo = t * chunk;
    if (lo >= n) return;
    u64 hi = lo + chunk < n ? lo + chunk : n;
    F acc = F::one();
    for (u64 k = lo; k < hi; k++) {
        out[k] = acc;  // product of the non-zero elements before k
        if (!a[k].is_zero()) acc = acc * a[k];
    }
    F inv = acc.inverse();  // (product of the chunk's non-zero elements)^-1
    for (u64 k = hi; k > lo; k--) {
        const F x = a[k - 1];
        if (x.is_zero()) {
            out[k - 1] = F::zero();
            continue;
        }
        F x_inv = inv * out[k - 1];
        inv = inv * x;
        out[k - 1] = x_inv;
    }
}
