//! The Poseidon hash on halo2-base's gates, for circuits without the custom
//! gate of [`super::chip`] (the epoch circuit, an aggregation circuit of
//! snark-verifier-sdk). Same permutation, same sponge as [`super::hash`].

use halo2_base::{
    gates::GateInstructions,
    halo2_proofs::halo2curves::bn256::Fr,
    AssignedValue, Context,
    QuantumCell::{Constant, Existing},
};

use super::{capacity, chunks, params, Domain, RATE, WIDTH};

type V = AssignedValue<Fr>;

fn pow5(ctx: &mut Context<Fr>, gate: &impl GateInstructions<Fr>, x: V) -> V {
    let x2 = gate.mul(ctx, x, x);
    let x4 = gate.mul(ctx, x2, x2);
    gate.mul(ctx, x4, x)
}

/// [`super::hash`] of `inputs` in `domain`, constrained on `gate`.
pub fn hash(ctx: &mut Context<Fr>, gate: &impl GateInstructions<Fr>, domain: Domain, inputs: &[V]) -> V {
    let p = params();
    let zero = ctx.load_zero();
    let mut s: [V; WIDTH] = [zero; WIDTH];
    s[0] = ctx.load_constant(capacity(domain, inputs.len()));
    for c in 0..chunks(inputs.len()) {
        for i in 0..RATE {
            if let Some(x) = inputs.get(c * RATE + i) {
                s[1 + i] = gate.add(ctx, s[1 + i], *x);
            }
        }
        for (r, rc) in p.rc.iter().enumerate() {
            let mut y = s;
            for j in 0..WIDTH {
                let x = gate.add(ctx, s[j], Constant(rc[j]));
                y[j] = if j == 0 || p.is_full(r) { pow5(ctx, gate, x) } else { x };
            }
            s = std::array::from_fn(|i| {
                gate.inner_product(ctx, y.iter().map(|v| Existing(*v)), p.mds[i].iter().map(|m| Constant(*m)))
            });
        }
    }
    s[1]
}

#[cfg(test)]
mod tests {
    use halo2_base::{gates::RangeInstructions, halo2_proofs::halo2curves::bn256::Fr};

    use super::*;

    #[test]
    fn equals_the_native_hash() {
        let inputs: Vec<Fr> = (0..6u64).map(|i| Fr::from(i * 7919 + 1)).collect();
        for n in [0, 1, 4, 5, 6] {
            let expect = super::super::hash(Domain::Epoch, &inputs[..n]);
            halo2_base::utils::testing::base_test().k(14).lookup_bits(8).run(|ctx, range| {
                let cells: Vec<V> = inputs[..n].iter().map(|v| ctx.load_witness(*v)).collect();
                assert_eq!(*hash(ctx, range.gate(), Domain::Epoch, &cells).value(), expect, "n = {n}");
            });
        }
    }
}
