//! The quotient h(X): every constraint combined with powers of y, evaluated
//! part by part on the extended coset (each part a size-n coset
//! `zeta * extended_omega^p * H`, so a rotation is an index shift as over H),
//! then divided by X^n - 1 — in halo2-axiom's constraint order (gates,
//! permutation, lookups), since that order fixes each constraint's power of y.

use std::sync::{Arc, Mutex, OnceLock};

use halo2_proofs::{
    halo2curves::{
        bn256::Fr,
        ff::{Field, PrimeField, WithSmallOrderMulGroup},
    },
    poly::EvaluationDomain,
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
    let lookups: Vec<Lookup<'_>> = ctx
        .cs
        .lookups()
        .iter()
        .map(|l| Lookup { name: l.name(), input: l.input_expressions(), table: l.table_expressions() })
        .collect();

    // The proving key's polynomials on every part: cached per key, since
    // they are the same for every proof (halo2-axiom recomputes them).
    let mut key_polys: Vec<&[Fr]> = Vec::new();
    key_polys.extend(pk.fixed_polys().iter().map(|p| p.values()));
    key_polys.extend([pk.l0().values(), pk.l_last().values(), pk.l_active_row().values()]);
    key_polys.extend(pk.permutation().polys().iter().map(|p| p.values()));
    let cached = key_parts(ctx, &key_polys)?;

    // The proof's own polynomials, in one batch per part.
    let mut polys: Vec<&[Fr]> = Vec::new();
    polys.extend(inputs.advice.iter().map(Vec::as_slice));
    polys.extend(inputs.instance.iter().map(Vec::as_slice));
    polys.extend(inputs.permutation_products.iter().map(Vec::as_slice));
    for l in inputs.lookups {
        polys.extend([l.product.as_slice(), &l.permuted_input, &l.permuted_table]);
    }

    // Every part of the proof's polynomials, and of the key's when they are
    // not cached, from one call: a device Hal uploads them once.
    let factors = part_factors(domain);
    let key_len = if cached.is_some() { 0 } else { key_polys.len() };
    let all: Vec<&[Fr]> = if cached.is_some() { polys } else { key_polys.iter().copied().chain(polys).collect() };
    let mut values = Vec::with_capacity(parts);
    ctx.hal.coeff_to_extended_parts(domain, &all, &factors, &mut |p, mut ext| {
        let proof_ext = ext.split_off(key_len);
        let key_ext: &[Vec<Fr>] = match &cached {
            Some(c) => &c[p],
            None => &ext,
        };
        values.push(part(ctx, key_ext, &proof_ext, inputs, &lookups, ch, factors[p])?);
        Ok(())
    })?;
    ctx.hal.quotient_to_coeff(domain, values)
}

/// The factors of the extended domain's parts: `extended_omega^i`, one per
/// part (part `i` is the coset `zeta * extended_omega^i * H`).
fn part_factors(domain: &EvaluationDomain<Fr>) -> Vec<Fr> {
    let parts = domain.extended_len() >> domain.k();
    std::iter::successors(Some(Fr::ONE), |f| Some(*f * domain.get_extended_omega())).take(parts).collect()
}

/// Bytes of extended proving-key parts kept across proofs
/// (`STATESYNC_KEY_CACHE_MIB`, default 2048; 0 disables the cache).
fn key_cache_budget() -> usize {
    std::env::var("STATESYNC_KEY_CACHE_MIB").ok().and_then(|v| v.parse::<usize>().ok()).unwrap_or(2048) << 20
}

/// A key's polynomials on every part: `[part][polynomial][row]`.
type KeyParts = Arc<Vec<Vec<Vec<Fr>>>>;
/// Cached key parts, oldest first, by key identity.
type KeyCache = Mutex<Vec<(Vec<u8>, KeyParts)>>;

/// The extended parts of `key_polys` for this proving key: from the cache, or
/// computed and cached when they fit the budget (older keys are evicted);
/// `None` when they do not fit (the caller computes each part as it goes).
fn key_parts(ctx: &Ctx<'_>, key_polys: &[&[Fr]]) -> Result<Option<KeyParts>, ProverError> {
    static CACHE: OnceLock<KeyCache> = OnceLock::new();
    let domain = ctx.domain;
    let parts = domain.extended_len() >> domain.k();
    let bytes = parts * key_polys.len() * ctx.n * size_of::<Fr>();
    let budget = key_cache_budget();
    if bytes > budget {
        return Ok(None);
    }
    // Per key and per Hal: under DualHal both back ends compute (and are
    // compared on) the key's parts too.
    let mut id = ctx.pk.get_vk().transcript_repr().to_repr().as_ref().to_vec();
    id.extend(domain.k().to_le_bytes());
    id.extend(ctx.hal.name().as_bytes());
    let cache = CACHE.get_or_init(Mutex::default);
    if let Some((_, c)) = cache.lock().unwrap_or_else(|e| e.into_inner()).iter().find(|(k, _)| *k == id) {
        return Ok(Some(c.clone()));
    }
    let factors = part_factors(domain);
    let mut all = Vec::with_capacity(parts);
    ctx.hal.coeff_to_extended_parts(domain, key_polys, &factors, &mut |_, part| {
        all.push(part);
        Ok(())
    })?;
    let entry: KeyParts = Arc::new(all);
    let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
    let size = |c: &KeyParts| c.iter().flatten().map(|p| p.len() * size_of::<Fr>()).sum::<usize>();
    while !cache.is_empty() && cache.iter().map(|(_, c)| size(c)).sum::<usize>() + bytes > budget {
        cache.remove(0);
    }
    cache.push((id, entry.clone()));
    Ok(Some(entry))
}

/// The combined constraints on one coset part; `key_ext` and `ext` hold the
/// part's values of the key's and the proof's polynomials in the order
/// [`quotient`] listed them.
fn part(
    ctx: &Ctx<'_>,
    key_ext: &[Vec<Fr>],
    ext: &[Vec<Fr>],
    inputs: &Inputs<'_>,
    lookups: &[Lookup<'_>],
    ch: Challenges,
    factor: Fr,
) -> Result<Vec<Fr>, ProverError> {
    let pk = ctx.pk;
    let n = ctx.n;
    let mut key_rest = key_ext.iter().map(Vec::as_slice);
    let mut take_key = |count: usize| -> Vec<&[Fr]> { key_rest.by_ref().take(count).collect() };
    let fixed = take_key(pk.fixed_polys().len());
    let [l0, l_last, l_active] = take_key(3)[..] else {
        return Err(ProverError::Hal("missing Lagrange selector parts".into()));
    };
    let perm_polys = take_key(pk.permutation().polys().len());
    let mut rest = ext.iter().map(Vec::as_slice);
    let mut take = |count: usize| -> Vec<&[Fr]> { rest.by_ref().take(count).collect() };
    let advice = take(inputs.advice.len());
    let instance = take(inputs.instance.len());
    let products = take(inputs.permutation_products.len());
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
