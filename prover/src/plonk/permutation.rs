//! The permutation (copy constraint) argument's grand products.

use halo2_proofs::{
    halo2curves::{
        bn256::Fr,
        ff::{Field, PrimeField},
    },
    plonk::Any,
};
use rand::RngCore;
use rayon::prelude::*;

use super::{expr::CHUNK, Ctx};
use crate::ProverError;

/// The Lagrange values of a column the permutation argument covers.
pub(crate) fn column<'a>(
    column: &halo2_proofs::plonk::Column<Any>,
    fixed: &[&'a [Fr]],
    advice: &[&'a [Fr]],
    instance: &[&'a [Fr]],
) -> &'a [Fr] {
    match column.column_type() {
        Any::Advice(_) => advice[column.index()],
        Any::Fixed => fixed[column.index()],
        Any::Instance => instance[column.index()],
    }
}

/// One grand product z per chunk of `degree - 2` columns, chained (each
/// starts where the previous one ended), the last `blinding_factors` rows
/// random; RNG order as halo2-axiom (a set's blinding rows, then its blind).
pub(crate) fn products<R: RngCore>(
    ctx: &Ctx<'_>,
    fixed: &[&[Fr]],
    advice: &[&[Fr]],
    instance: &[&[Fr]],
    beta: Fr,
    gamma: Fr,
    rng: &mut R,
) -> Result<Vec<Vec<Fr>>, ProverError> {
    let pk = ctx.pk;
    let chunk_len = ctx.cs.degree() - 2;
    let n = ctx.n;
    let bf = ctx.blinding_factors;
    let omega = ctx.domain.get_omega();
    let mut deltaomega = Fr::ONE;
    let mut last_z = Fr::ONE;
    let mut sets = Vec::new();
    let columns = ctx.cs.permutation().get_columns();
    let permutations = pk.permutation().permutations();
    for (columns, perms) in columns.chunks(chunk_len).zip(permutations.chunks(chunk_len)) {
        // Denominators: prod_j (p_j + beta s_j + gamma).
        let mut modified = vec![Fr::ONE; n];
        for (col, perm) in columns.iter().zip(perms) {
            let values = column(col, fixed, advice, instance);
            modified.par_iter_mut().zip(values.par_iter().zip(perm.values().par_iter())).for_each(|(m, (v, s))| {
                *m *= beta * s + gamma + v;
            });
        }
        ctx.hal.batch_invert(&mut modified)?;
        // Numerators: prod_j (p_j + delta^j omega^i beta + gamma).
        for col in columns {
            let values = column(col, fixed, advice, instance);
            modified.par_chunks_mut(CHUNK).enumerate().for_each(|(c, m)| {
                let start = c * CHUNK;
                let mut dw = deltaomega * omega.pow_vartime([start as u64]);
                for (m, v) in m.iter_mut().zip(&values[start..]) {
                    *m *= dw * beta + gamma + v;
                    dw *= omega;
                }
            });
            deltaomega *= Fr::DELTA;
        }
        let mut z = Vec::with_capacity(n);
        let mut acc = last_z;
        z.push(acc);
        for m in &modified[..n - 1] {
            acc *= m;
            z.push(acc);
        }
        for v in &mut z[n - bf..] {
            *v = Fr::random(&mut *rng);
        }
        last_z = z[n - bf - 1];
        // The commitment blind halo2-axiom draws (unused by KZG).
        Fr::random(&mut *rng);
        sets.push(z);
    }
    Ok(sets)
}
