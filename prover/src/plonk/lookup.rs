//! halo2's (permutation-based) lookup argument: permuted columns and their
//! grand product.

use std::collections::BTreeMap;

use halo2_proofs::{
    halo2curves::{bn256::Fr, ff::Field},
    plonk::Expression,
};
use rand::RngCore;
use rayon::prelude::*;

use super::{expr::Columns, Ctx};
use crate::ProverError;

/// A lookup of the constraint system (halo2-axiom does not export its type).
pub(crate) struct Lookup<'a> {
    pub name: &'a str,
    pub input: &'a [Expression<Fr>],
    pub table: &'a [Expression<Fr>],
}

/// One lookup after its permuted columns are fixed.
pub(crate) struct Permuted {
    pub compressed_input: Vec<Fr>,
    pub compressed_table: Vec<Fr>,
    pub permuted_input: Vec<Fr>,
    pub permuted_table: Vec<Fr>,
}

/// The compressed input and table of `lookup` and their permutation: the
/// input sorted, each distinct value first paired with the same table value,
/// the table's remaining values filling the repeats (halo2's construction);
/// the rows past the usable ones random. Deterministic: halo2-axiom orders
/// distinct inputs by a `HashMap`, so its permuted columns vary from run to
/// run; any valid permutation verifies.
pub(crate) fn permute<R: RngCore>(
    ctx: &Ctx<'_>,
    lookup: &Lookup<'_>,
    cols: &Columns<'_>,
    theta: Fr,
    rng: &mut R,
) -> Result<Permuted, ProverError> {
    let compressed_input = cols.compress(lookup.input, theta)?;
    let compressed_table = cols.compress(lookup.table, theta)?;
    let usable = ctx.usable_rows;

    let mut input = compressed_input[..usable].to_vec();
    input.par_sort();
    let mut leftover: BTreeMap<Fr, usize> = BTreeMap::new();
    for t in &compressed_table[..usable] {
        *leftover.entry(*t).or_insert(0) += 1;
    }
    let mut table = vec![Fr::ZERO; usable];
    let mut repeats = Vec::new();
    for (row, v) in input.iter().enumerate() {
        if row == 0 || *v != input[row - 1] {
            table[row] = *v;
            match leftover.get_mut(v) {
                Some(count) if *count > 0 => *count -= 1,
                _ => {
                    return Err(ProverError::Unsatisfied(format!(
                        "lookup {:?}: an input (row {row} after sorting) is not in the table",
                        lookup.name
                    )))
                }
            }
        } else {
            repeats.push(row);
        }
    }
    for (v, count) in leftover {
        for _ in 0..count {
            let row = repeats.pop().ok_or_else(|| ProverError::Halo2("lookup table longer than its input".into()))?;
            table[row] = v;
        }
    }
    input.extend((usable..ctx.n).map(|_| Fr::random(&mut *rng)));
    table.extend((usable..ctx.n).map(|_| Fr::random(&mut *rng)));
    Ok(Permuted { compressed_input, compressed_table, permuted_input: input, permuted_table: table })
}

/// The lookup's grand product z (Lagrange values): z_0 = 1,
/// z_(i+1) = z_i (A_i + beta)(S_i + gamma) / ((A'_i + beta)(S'_i + gamma)),
/// the last `blinding_factors` rows random.
pub(crate) fn product<R: RngCore>(
    ctx: &Ctx<'_>,
    p: &Permuted,
    beta: Fr,
    gamma: Fr,
    rng: &mut R,
) -> Result<Vec<Fr>, ProverError> {
    let mut ratio: Vec<Fr> =
        p.permuted_input.par_iter().zip(&p.permuted_table).map(|(a, s)| (beta + a) * (gamma + s)).collect();
    ctx.hal.batch_invert(&mut ratio)?;
    ratio
        .par_iter_mut()
        .zip(p.compressed_input.par_iter().zip(&p.compressed_table))
        .for_each(|(r, (a, s))| *r *= (*a + beta) * (*s + gamma));
    let bf = ctx.blinding_factors;
    let mut z = Vec::with_capacity(ctx.n);
    let mut acc = Fr::ONE;
    z.push(acc);
    for r in &ratio[..ctx.n - bf - 1] {
        acc *= r;
        z.push(acc);
    }
    z.extend((0..bf).map(|_| Fr::random(&mut *rng)));
    Ok(z)
}
