//! The quotient h(X): every constraint combined with powers of y, evaluated
//! part by part on the extended coset (each part a size-n coset
//! `zeta * extended_omega^p * H`, so a rotation is an index shift as over H),
//! then divided by X^n - 1 — in halo2-axiom's constraint order (gates,
//! permutation, lookups), since that order fixes each constraint's power of y.

use halo2_proofs::halo2curves::{
    bn256::Fr,
    ff::{Field, PrimeField, WithSmallOrderMulGroup},
};
use rayon::prelude::*;

use super::{
    expr::{rotate, Columns, CHUNK},
    lookup::Lookup,
    permutation, Ctx,
};
use crate::ProverError;

/// Coefficients of a lookup's committed polynomials.
pub(crate) struct LookupPolys {
    pub product: Vec<Fr>,
    pub permuted_input: Vec<Fr>,
    pub permuted_table: Vec<Fr>,
}

/// Challenges the quotient uses.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Challenges {
    pub theta: Fr,
    pub beta: Fr,
    pub gamma: Fr,
    pub y: Fr,
}

/// The polynomials (coefficients) the quotient reads.
pub(crate) struct Inputs<'a> {
    pub advice: &'a [Vec<Fr>],
    pub instance: &'a [Vec<Fr>],
    pub challenges: &'a [Fr],
    pub permutation_products: &'a [Vec<Fr>],
    pub lookups: &'a [LookupPolys],
}

/// h(X) in coefficient form (n times the quotient degree coefficients).
pub(crate) fn quotient(ctx: &Ctx<'_>, inputs: &Inputs<'_>, ch: Challenges) -> Result<Vec<Fr>, ProverError> {
    let domain = ctx.domain;
    let pk = ctx.pk;
    let parts = domain.extended_len() >> domain.k();
    let extended_omega = domain.get_extended_omega();
    let lookups: Vec<Lookup<'_>> = ctx
        .cs
        .lookups()
        .iter()
        .map(|l| Lookup { name: l.name(), input: l.input_expressions(), table: l.table_expressions() })
        .collect();

    // Every polynomial the constraints read, in one batch per part.
    let mut polys: Vec<&[Fr]> = Vec::new();
    polys.extend(pk.fixed_polys().iter().map(|p| p.values()));
    polys.extend([pk.l0().values(), pk.l_last().values(), pk.l_active_row().values()]);
    polys.extend(inputs.advice.iter().map(Vec::as_slice));
    polys.extend(inputs.instance.iter().map(Vec::as_slice));
    polys.extend(inputs.permutation_products.iter().map(Vec::as_slice));
    polys.extend(pk.permutation().polys().iter().map(|p| p.values()));
    for l in inputs.lookups {
        polys.extend([l.product.as_slice(), &l.permuted_input, &l.permuted_table]);
    }

    let mut factor = Fr::ONE;
    let mut values = Vec::with_capacity(parts);
    for _ in 0..parts {
        let ext = ctx.hal.coeff_to_extended_part(domain, &polys, factor)?;
        values.push(part(ctx, &ext, inputs, &lookups, ch, factor)?);
        factor *= extended_omega;
    }
    ctx.hal.quotient_to_coeff(domain, values)
}

/// The combined constraints on one coset part; `ext` holds the part's values
/// of the polynomials in the order [`quotient`] listed them.
fn part(
    ctx: &Ctx<'_>,
    ext: &[Vec<Fr>],
    inputs: &Inputs<'_>,
    lookups: &[Lookup<'_>],
    ch: Challenges,
    factor: Fr,
) -> Result<Vec<Fr>, ProverError> {
    let pk = ctx.pk;
    let n = ctx.n;
    let mut rest = ext.iter().map(Vec::as_slice);
    let mut take = |count: usize| -> Vec<&[Fr]> { rest.by_ref().take(count).collect() };
    let fixed = take(pk.fixed_polys().len());
    let [l0, l_last, l_active] = take(3)[..] else {
        return Err(ProverError::Hal("missing Lagrange selector parts".into()));
    };
    let advice = take(inputs.advice.len());
    let instance = take(inputs.instance.len());
    let products = take(inputs.permutation_products.len());
    let perm_polys = take(pk.permutation().polys().len());
    let lookup_parts: Vec<Vec<&[Fr]>> = inputs.lookups.iter().map(|_| take(3)).collect();
    let cols = Columns { fixed: &fixed, advice: &advice, instance: &instance, challenges: inputs.challenges, n };

    let Challenges { theta, beta, gamma, y } = ch;
    let omega = ctx.domain.get_omega();
    let last_rotation = -((ctx.blinding_factors + 1) as i32);
    let chunk_len = ctx.cs.degree() - 2;
    let perm_columns = ctx.cs.permutation().get_columns();
    let gates: Vec<_> = ctx.cs.gates().iter().flat_map(|g| g.polynomials()).collect();

    let mut values = vec![Fr::ZERO; n];
    values.par_chunks_mut(CHUNK).enumerate().try_for_each(|(c, out)| -> Result<(), ProverError> {
        let start = c * CHUNK;
        let len = out.len();
        let mut tmp = vec![Fr::ZERO; len];
        for poly in &gates {
            cols.eval_into(poly, start, &mut tmp)?;
            out.iter_mut().zip(&tmp).for_each(|(v, t)| *v = *v * y + t);
        }

        if let (Some(first), Some(last)) = (products.first(), products.last()) {
            let mut beta_term = factor * omega.pow_vartime([start as u64]);
            for (i, v) in out.iter_mut().enumerate() {
                let idx = start + i;
                let r_next = rotate(idx, 1, n);
                let r_last = rotate(idx, last_rotation, n);
                *v = *v * y + (Fr::ONE - first[idx]) * l0[idx];
                *v = *v * y + (last[idx].square() - last[idx]) * l_last[idx];
                for s in 1..products.len() {
                    *v = *v * y + (products[s][idx] - products[s - 1][r_last]) * l0[idx];
                }
                let mut delta = beta * Fr::ZETA * beta_term;
                for ((columns, z), perms) in
                    perm_columns.chunks(chunk_len).zip(&products).zip(perm_polys.chunks(chunk_len))
                {
                    let mut left = z[r_next];
                    let mut right = z[idx];
                    for (col, perm) in columns.iter().zip(perms) {
                        let value = permutation::column(col, &fixed, &advice, &instance)[idx];
                        left *= value + beta * perm[idx] + gamma;
                    }
                    for col in columns {
                        let value = permutation::column(col, &fixed, &advice, &instance)[idx];
                        right *= value + delta + gamma;
                        delta *= Fr::DELTA;
                    }
                    *v = *v * y + (left - right) * l_active[idx];
                }
                beta_term *= omega;
            }
        }

        let mut input = vec![Fr::ZERO; len];
        for (lookup, p) in lookups.iter().zip(&lookup_parts) {
            let (z, a, s) = (p[0], p[1], p[2]);
            cols.compress_into(lookup.input, theta, start, &mut input)?;
            cols.compress_into(lookup.table, theta, start, &mut tmp)?;
            for (i, v) in out.iter_mut().enumerate() {
                let idx = start + i;
                let table_value = (input[i] + beta) * (tmp[i] + gamma);
                let r_next = rotate(idx, 1, n);
                let r_prev = rotate(idx, -1, n);
                let a_minus_s = a[idx] - s[idx];
                *v = *v * y + (Fr::ONE - z[idx]) * l0[idx];
                *v = *v * y + (z[idx].square() - z[idx]) * l_last[idx];
                *v = *v * y + (z[r_next] * (a[idx] + beta) * (s[idx] + gamma) - z[idx] * table_value) * l_active[idx];
                *v = *v * y + a_minus_s * l0[idx];
                *v = *v * y + a_minus_s * (a[idx] - a[r_prev]) * l_active[idx];
            }
        }
        Ok(())
    })?;
    Ok(values)
}
