//! Native Poseidon over BN254 Fr, identical to halo2-base's in-circuit
//! `PoseidonHasher::hash_fix_len_array` (same spec object, same optimized
//! round structure, same padding), so a hash computed here equals the hash the
//! circuit constrains. Checked against the circuit in `circuit::tests`.

use std::sync::OnceLock;

use halo2_base::halo2_proofs::arithmetic::Field;
use halo2_base::{halo2_proofs::halo2curves::bn256::Fr, poseidon::hasher::spec::OptimizedPoseidonSpec};

/// Width of the permutation.
pub const T: usize = 4;
/// Rate: elements absorbed per permutation (a Merkle node is one permutation).
pub const RATE: usize = 3;
/// Full rounds.
pub const R_F: usize = 8;
/// Partial rounds for t = 4 over BN254.
pub const R_P: usize = 56;

/// The spec shared by the native hash and the circuit.
pub fn spec() -> &'static OptimizedPoseidonSpec<Fr, T, RATE> {
    static SPEC: OnceLock<OptimizedPoseidonSpec<Fr, T, RATE>> = OnceLock::new();
    SPEC.get_or_init(OptimizedPoseidonSpec::new::<R_F, R_P, 0>)
}

fn pow5(x: Fr) -> Fr {
    let x2 = x.square();
    x2.square() * x
}

fn mds_mul(m: &[[Fr; T]; T], s: &[Fr; T]) -> [Fr; T] {
    std::array::from_fn(|i| m[i].iter().zip(s).map(|(a, b)| *a * b).sum())
}

/// One permutation absorbing `inputs` (at most RATE of them) with the
/// halo2-base padding: a single 1 after the inputs when fewer than RATE.
fn permute(state: &mut [Fr; T], inputs: &[Fr]) {
    let spec = spec();
    let r_f = spec.r_f() / 2;
    let mds = spec.mds_matrices().mds().as_ref();
    let pre_sparse = spec.mds_matrices().pre_sparse_mds().as_ref();
    let start = spec.constants().start();
    // absorb with the first pre-constants
    let pre = &start[0];
    state[0] += pre[0];
    for i in 1..T {
        state[i] += pre[i];
        if i <= inputs.len() {
            state[i] += inputs[i - 1];
        } else if i == inputs.len() + 1 {
            state[i] += Fr::ONE;
        }
    }
    let sbox_full = |s: &mut [Fr; T], c: &[Fr; T]| {
        for (x, c) in s.iter_mut().zip(c) {
            *x = pow5(*x) + c;
        }
    };
    for c in start.iter().skip(1).take(r_f - 1) {
        sbox_full(state, c);
        *state = mds_mul(mds, state);
    }
    sbox_full(state, start.last().expect("spec has full rounds"));
    *state = mds_mul(pre_sparse, state);
    for (c, sparse) in spec.constants().partial().iter().zip(spec.mds_matrices().sparse_matrices()) {
        state[0] = pow5(state[0]) + c;
        let s0 = state[0];
        let first: Fr = sparse.row().iter().zip(state.iter()).map(|(a, b)| *a * b).sum();
        for (x, coeff) in state.iter_mut().skip(1).zip(sparse.col_hat()) {
            *x += s0 * coeff;
        }
        state[0] = first;
    }
    for c in spec.constants().end() {
        sbox_full(state, c);
        *state = mds_mul(mds, state);
    }
    sbox_full(state, &[Fr::ZERO; T]);
    *state = mds_mul(mds, state);
}

/// Poseidon hash of a fixed-length array.
pub fn hash(inputs: &[Fr]) -> Fr {
    let mut state = [Fr::ZERO; T];
    state[0] = Fr::from_raw([0, 1, 0, 0]);
    for chunk in inputs.chunks(RATE) {
        permute(&mut state, chunk);
    }
    if inputs.len().is_multiple_of(RATE) {
        permute(&mut state, &[]);
    }
    state[1]
}

/// Poseidon of a Merkle node.
pub fn hash2(left: Fr, right: Fr) -> Fr {
    hash(&[left, right])
}
