//! The SHPLONK multi-opening (Boneh–Drake–Fisch–Gabizon, as halo2-axiom's
//! `ProverSHPLONK`): queries grouped by the set of points each polynomial is
//! opened at, one quotient commitment, then one linearisation commitment.

use halo2_proofs::{
    arithmetic::{eval_polynomial, evaluate_vanishing_polynomial, kate_division, lagrange_interpolate, powers},
    halo2curves::{
        bn256::{Fr, G1Affine},
        ff::Field,
    },
    transcript::{EncodedChallenge, TranscriptWrite},
};
use rayon::prelude::*;

use super::Ctx;
use crate::{hal::Bases, ProverError};

/// Polynomial `poly` (an index into the caller's list) opened at `point`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Query {
    pub poly: usize,
    pub point: Fr,
}

/// Polynomials opened at the same set of points.
struct RotationSet {
    points: Vec<Fr>,
    polys: Vec<usize>,
}

fn same_set(a: &[Fr], b: &[Fr]) -> bool {
    a.len() == b.len() && a.iter().all(|p| b.contains(p))
}

/// Rotation sets in the verifier's order: sets in order of the first
/// polynomial that has them, polynomials in order of first query.
fn rotation_sets(queries: &[Query]) -> (Vec<RotationSet>, Vec<Fr>) {
    let mut super_points: Vec<Fr> = Vec::new();
    let mut per_poly: Vec<(usize, Vec<Fr>)> = Vec::new();
    for q in queries {
        if !super_points.contains(&q.point) {
            super_points.push(q.point);
        }
        match per_poly.iter_mut().find(|(p, _)| *p == q.poly) {
            Some((_, points)) if !points.contains(&q.point) => points.push(q.point),
            Some(_) => {}
            None => per_poly.push((q.poly, vec![q.point])),
        }
    }
    let mut sets: Vec<RotationSet> = Vec::new();
    for (poly, points) in per_poly {
        match sets.iter_mut().find(|s| same_set(&s.points, &points)) {
            Some(s) => s.polys.push(poly),
            None => sets.push(RotationSet { points, polys: vec![poly] }),
        }
    }
    (sets, super_points)
}

/// `sum_j y^j (p_j - r_j)` over the polynomials of a set, `r_j` each
/// polynomial's low-degree equivalent (coefficients, possibly shorter).
fn combine(polys: &[&[Fr]], low: &[Vec<Fr>], y: Fr, n: usize) -> Vec<Fr> {
    let ys: Vec<Fr> = powers(y).take(polys.len()).collect();
    let mut out = vec![Fr::ZERO; n];
    out.par_iter_mut().enumerate().for_each(|(k, o)| {
        for ((p, r), yj) in polys.iter().zip(low).zip(&ys) {
            let mut c = p.get(k).copied().unwrap_or(Fr::ZERO);
            if let Some(r) = r.get(k) {
                c -= r;
            }
            *o += c * yj;
        }
    });
    out
}

/// Writes the SHPLONK opening proof of `queries` over `polys` (coefficients).
pub(crate) fn open<E: EncodedChallenge<G1Affine>, T: TranscriptWrite<G1Affine, E>>(
    ctx: &Ctx<'_>,
    polys: &[&[Fr]],
    queries: &[Query],
    transcript: &mut T,
) -> Result<(), ProverError> {
    let n = ctx.n;
    let y = *transcript.squeeze_challenge_scalar::<()>();
    let (sets, super_points) = rotation_sets(queries);

    // Each polynomial's evaluations at its set's points and its low-degree
    // equivalent (the interpolation of those evaluations).
    let low: Vec<Vec<Vec<Fr>>> = sets
        .par_iter()
        .map(|s| {
            s.polys
                .iter()
                .map(|&p| {
                    let evals: Vec<Fr> = s.points.iter().map(|x| eval_polynomial(polys[p], *x)).collect();
                    lagrange_interpolate(&s.points, &evals)
                })
                .collect()
        })
        .collect();

    let v = *transcript.squeeze_challenge_scalar::<()>();
    let set_polys: Vec<Vec<&[Fr]>> = sets.iter().map(|s| s.polys.iter().map(|&p| polys[p]).collect()).collect();
    let quotients: Vec<Vec<Fr>> = sets
        .par_iter()
        .zip(&set_polys)
        .zip(&low)
        .map(|((s, ps), low)| {
            let numerator = combine(ps, low, y, n);
            let mut q = s.points.iter().fold(numerator, |acc, x| kate_division(&acc, *x));
            q.resize(n, Fr::ZERO);
            q
        })
        .collect();
    let h_x = linear_combination(&quotients, v, n);
    let [h] = ctx.hal.commit(ctx.params, Bases::Monomial, &[&h_x])?[..] else {
        return Err(ProverError::Hal("one commitment expected".into()));
    };
    transcript.write_point(h).map_err(ProverError::io("writing the SHPLONK quotient"))?;
    let u = *transcript.squeeze_challenge_scalar::<()>();

    let mut z_diffs = Vec::with_capacity(sets.len());
    let linearised: Vec<Vec<Fr>> = sets
        .iter()
        .zip(&set_polys)
        .zip(&low)
        .map(|((s, ps), low)| {
            let diffs: Vec<Fr> = super_points.iter().filter(|p| !s.points.contains(p)).copied().collect();
            let z_i = evaluate_vanishing_polynomial(&diffs, u);
            z_diffs.push(z_i);
            // p_j - r_j(u), combined with powers of y, scaled by z_i.
            let r_at_u: Vec<Vec<Fr>> = low.iter().map(|r| vec![eval_polynomial(r, u)]).collect();
            let mut l = combine(ps, &r_at_u, y, n);
            l.par_iter_mut().for_each(|c| *c *= z_i);
            l
        })
        .collect();
    let mut l_x = linear_combination(&linearised, v, n);
    let zt = evaluate_vanishing_polynomial(&super_points, u);
    l_x.par_iter_mut().zip(&h_x).for_each(|(l, h)| *l -= *h * zt);
    let mut w = kate_division(&l_x, u);
    let z0_inv = z_diffs
        .first()
        .and_then(|z| Option::<Fr>::from(z.invert()))
        .ok_or_else(|| ProverError::Halo2("SHPLONK: no opening queries".into()))?;
    w.par_iter_mut().for_each(|c| *c *= z0_inv);
    let [w] = ctx.hal.commit(ctx.params, Bases::Monomial, &[&w])?[..] else {
        return Err(ProverError::Hal("one commitment expected".into()));
    };
    transcript.write_point(w).map_err(ProverError::io("writing the SHPLONK opening"))?;
    Ok(())
}

/// `sum_i v^i polys_i` (each at most n long).
fn linear_combination(polys: &[Vec<Fr>], v: Fr, n: usize) -> Vec<Fr> {
    let vs: Vec<Fr> = powers(v).take(polys.len()).collect();
    let mut out = vec![Fr::ZERO; n];
    out.par_iter_mut().enumerate().for_each(|(k, o)| {
        for (p, vi) in polys.iter().zip(&vs) {
            if let Some(c) = p.get(k) {
                *o += *c * vi;
            }
        }
    });
    out
}
