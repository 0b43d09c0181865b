//! statesync's halo2 prover: halo2-axiom's KZG/SHPLONK protocol (same
//! transcript order, so halo2-axiom's verifier and snark-verifier accept its
//! proofs), written against a [`Hal`].
//!
//! Differences from halo2-axiom's `create_proof`, none visible to a verifier:
//! - all randomness comes from the caller's RNG (halo2-axiom draws the
//!   vanishing argument's random polynomial from `thread_rng`), so a seeded
//!   RNG gives the same proof bytes on every Hal;
//! - lookup columns are permuted deterministically (halo2-axiom orders
//!   distinct inputs by a randomly seeded `HashMap`);
//! - the quotient is evaluated by a column-chunked expression evaluator
//!   rather than halo2-axiom's compiled graph (the same polynomial).

mod expr;
mod lookup;
mod permutation;
mod quotient;
mod shplonk;
mod witness;

use halo2_proofs::{
    arithmetic::eval_polynomial,
    halo2curves::{
        bn256::{Bn256, Fr, G1Affine},
        ff::Field,
    },
    plonk::{Circuit, ConstraintSystem, ProvingKey},
    poly::{commitment::Params, kzg::commitment::ParamsKZG, EvaluationDomain, Rotation},
    transcript::{EncodedChallenge, TranscriptWrite},
};
use rand::RngCore;

use crate::{
    hal::{Bases, Hal},
    ProverError,
};
use expr::Columns;
use lookup::Lookup;
use quotient::{Challenges, Inputs, LookupPolys};
use shplonk::Query;

/// What every step of one proof reads.
pub(crate) struct Ctx<'a> {
    pub hal: &'a dyn Hal,
    pub params: &'a ParamsKZG<Bn256>,
    pub params_k: u32,
    pub pk: &'a ProvingKey<G1Affine>,
    pub cs: &'a ConstraintSystem<Fr>,
    pub domain: &'a EvaluationDomain<Fr>,
    /// Rows (2^k).
    pub n: usize,
    pub blinding_factors: usize,
    /// Rows the witness may use: n - (blinding_factors + 1).
    pub usable_rows: usize,
    pub column_phase: Vec<u8>,
    pub challenge_phase: Vec<u8>,
}

fn squeeze<E: EncodedChallenge<G1Affine>, T: TranscriptWrite<G1Affine, E>>(t: &mut T) -> Fr {
    *t.squeeze_challenge_scalar::<()>()
}

fn write_points<E: EncodedChallenge<G1Affine>, T: TranscriptWrite<G1Affine, E>>(
    t: &mut T,
    points: &[G1Affine],
) -> Result<(), ProverError> {
    for p in points {
        t.write_point(*p).map_err(ProverError::io("writing a commitment"))?;
    }
    Ok(())
}

fn write_scalars<E: EncodedChallenge<G1Affine>, T: TranscriptWrite<G1Affine, E>>(
    t: &mut T,
    scalars: impl IntoIterator<Item = Fr>,
) -> Result<(), ProverError> {
    for s in scalars {
        t.write_scalar(s).map_err(ProverError::io("writing an evaluation"))?;
    }
    Ok(())
}

fn slices(v: &[Vec<Fr>]) -> Vec<&[Fr]> {
    v.iter().map(Vec::as_slice).collect()
}

/// Proves `circuit` (one circuit, its `instances` one slice per instance
/// column) with `pk`, writing the proof to `transcript`; every random value
/// comes from `rng`.
pub fn create_proof<C, E, T, R>(
    hal: &dyn Hal,
    params: &ParamsKZG<Bn256>,
    pk: &ProvingKey<G1Affine>,
    circuit: &C,
    instances: &[&[Fr]],
    mut rng: R,
    transcript: &mut T,
) -> Result<(), ProverError>
where
    C: Circuit<Fr>,
    E: EncodedChallenge<G1Affine>,
    T: TranscriptWrite<G1Affine, E>,
    R: RngCore,
{
    let vk = pk.get_vk();
    let cs = vk.cs();
    let domain = vk.get_domain();
    let n = 1usize << domain.k();
    if params.k() != domain.k() {
        return Err(ProverError::Halo2(format!("params of k = {} for a key of k = {}", params.k(), domain.k())));
    }
    let blinding_factors = cs.blinding_factors();
    let ctx = Ctx {
        hal,
        params,
        params_k: params.k(),
        pk,
        cs,
        domain,
        n,
        blinding_factors,
        usable_rows: n - (blinding_factors + 1),
        column_phase: cs.advice_column_phase(),
        challenge_phase: cs.challenge_phase(),
    };
    if instances.len() != cs.num_instance_columns() {
        return Err(ProverError::Halo2(format!(
            "{} instance columns given, the circuit has {}",
            instances.len(),
            cs.num_instance_columns()
        )));
    }
    if let Some(long) = instances.iter().find(|i| i.len() > ctx.usable_rows) {
        return Err(ProverError::Halo2(format!("{} instances exceed the {} usable rows", long.len(), ctx.usable_rows)));
    }

    vk.hash_into(transcript).map_err(ProverError::io("hashing the verifying key"))?;
    let instance_values: Vec<Vec<Fr>> = instances
        .iter()
        .map(|i| {
            let mut v = i.to_vec();
            v.resize(n, Fr::ZERO);
            v
        })
        .collect();
    let mut instance_polys = instance_values.clone();
    hal.lagrange_to_coeff(domain, &mut instance_polys)?;

    // Phases: advice commitments and the circuit's own challenges.
    let witness = witness::synthesize(&ctx, circuit, instances, &mut rng, transcript)?;
    let advice_values = witness.values;
    let advice_polys = witness.coeffs;
    let challenges = witness.challenges;

    let fixed: Vec<&[Fr]> = pk.fixed_values().iter().map(|p| p.values()).collect();
    let advice = slices(&advice_values);
    let instance = slices(&instance_values);
    let cols = Columns { fixed: &fixed, advice: &advice, instance: &instance, challenges: &challenges, n };

    // Lookups: permuted columns.
    let theta = squeeze(transcript);
    let lookups: Vec<Lookup<'_>> = cs
        .lookups()
        .iter()
        .map(|l| Lookup { name: l.name(), input: l.input_expressions(), table: l.table_expressions() })
        .collect();
    let mut permuted = Vec::with_capacity(lookups.len());
    for l in &lookups {
        permuted.push(lookup::permute(&ctx, l, &cols, theta, &mut rng)?);
        // halo2-axiom's blinds of the two commitments (unused by KZG).
        Fr::random(&mut rng);
        Fr::random(&mut rng);
    }
    let mut permuted_polys: Vec<Vec<Fr>> =
        permuted.iter().flat_map(|p| [p.permuted_input.clone(), p.permuted_table.clone()]).collect();
    write_points(transcript, &hal.commit_and_interpolate(params, domain, &mut permuted_polys)?)?;

    // Permutation grand products.
    let beta = squeeze(transcript);
    let gamma = squeeze(transcript);
    let mut products = permutation::products(&ctx, &fixed, &advice, &instance, beta, gamma, &mut rng)?;
    write_points(transcript, &hal.commit_and_interpolate(params, domain, &mut products)?)?;

    // Lookup grand products.
    let mut lookup_products = Vec::with_capacity(permuted.len());
    for p in &permuted {
        lookup_products.push(lookup::product(&ctx, p, beta, gamma, &mut rng)?);
        Fr::random(&mut rng);
    }
    drop(permuted);
    write_points(transcript, &hal.commit_and_interpolate(params, domain, &mut lookup_products)?)?;
    let mut permuted_polys = permuted_polys.into_iter();
    let lookup_polys: Vec<LookupPolys> = lookup_products
        .into_iter()
        .map(|product| LookupPolys {
            product,
            permuted_input: permuted_polys.next().unwrap_or_default(),
            permuted_table: permuted_polys.next().unwrap_or_default(),
        })
        .collect();

    // Vanishing argument: a random polynomial to blind h(x).
    let random_poly: Vec<Fr> = (0..n).map(|_| Fr::random(&mut rng)).collect();
    Fr::random(&mut rng);
    write_points(transcript, &hal.commit(params, Bases::Monomial, &[&random_poly])?)?;
    let y = squeeze(transcript);

    drop(advice_values); // the evaluations' last use was the grand products
    let h = quotient::quotient(
        &ctx,
        &Inputs {
            advice: &advice_polys,
            instance: &instance_polys,
            challenges: &challenges,
            permutation_products: &products,
            lookups: &lookup_polys,
        },
        Challenges { theta, beta, gamma, y },
    )?;
    let pieces: Vec<&[Fr]> = h.chunks_exact(n).collect();
    for _ in &pieces {
        Fr::random(&mut rng);
    }
    write_points(transcript, &hal.commit(params, Bases::Monomial, &pieces)?)?;

    // Evaluations at x.
    let x = squeeze(transcript);
    let xn = x.pow_vartime([n as u64]);
    let at = |r: Rotation| domain.rotate_omega(x, r);
    let x_next = at(Rotation::next());
    let x_prev = at(Rotation::prev());
    let x_last = at(Rotation(-((blinding_factors + 1) as i32)));
    write_scalars(
        transcript,
        cs.advice_queries().iter().map(|(c, r)| eval_polynomial(&advice_polys[c.index()], at(*r))),
    )?;
    let fixed_polys: Vec<&[Fr]> = pk.fixed_polys().iter().map(|p| p.values()).collect();
    write_scalars(transcript, cs.fixed_queries().iter().map(|(c, r)| eval_polynomial(fixed_polys[c.index()], at(*r))))?;
    let h_poly = pieces
        .iter()
        .rev()
        .fold(vec![Fr::ZERO; n], |acc, piece| acc.iter().zip(piece.iter()).map(|(a, p)| *a * xn + p).collect());
    write_scalars(transcript, [eval_polynomial(&random_poly, x)])?;
    let sigma: Vec<&[Fr]> = pk.permutation().polys().iter().map(|p| p.values()).collect();
    write_scalars(transcript, sigma.iter().map(|p| eval_polynomial(p, x)))?;
    for (i, z) in products.iter().enumerate() {
        write_scalars(transcript, [eval_polynomial(z, x), eval_polynomial(z, x_next)])?;
        if i + 1 < products.len() {
            write_scalars(transcript, [eval_polynomial(z, x_last)])?;
        }
    }
    for l in &lookup_polys {
        write_scalars(
            transcript,
            [
                eval_polynomial(&l.product, x),
                eval_polynomial(&l.product, x_next),
                eval_polynomial(&l.permuted_input, x),
                eval_polynomial(&l.permuted_input, x_prev),
                eval_polynomial(&l.permuted_table, x),
            ],
        )?;
    }

    // The multi-opening, queries in halo2-axiom's order.
    let mut polys: Vec<&[Fr]> = Vec::new();
    let mut queries: Vec<Query> = Vec::new();
    let advice_base = polys.len();
    polys.extend(advice_polys.iter().map(Vec::as_slice));
    for (c, r) in cs.advice_queries() {
        queries.push(Query { poly: advice_base + c.index(), point: at(*r) });
    }
    let z_base = polys.len();
    polys.extend(products.iter().map(Vec::as_slice));
    for i in 0..products.len() {
        queries.push(Query { poly: z_base + i, point: x });
        queries.push(Query { poly: z_base + i, point: x_next });
    }
    for i in (0..products.len()).rev().skip(1) {
        queries.push(Query { poly: z_base + i, point: x_last });
    }
    for l in &lookup_polys {
        let base = polys.len();
        polys.extend([l.product.as_slice(), &l.permuted_input, &l.permuted_table]);
        queries.push(Query { poly: base, point: x });
        queries.push(Query { poly: base + 1, point: x });
        queries.push(Query { poly: base + 2, point: x });
        queries.push(Query { poly: base + 1, point: x_prev });
        queries.push(Query { poly: base, point: x_next });
    }
    let fixed_base = polys.len();
    polys.extend(fixed_polys.iter().copied());
    for (c, r) in cs.fixed_queries() {
        queries.push(Query { poly: fixed_base + c.index(), point: at(*r) });
    }
    let sigma_base = polys.len();
    polys.extend(sigma.iter().copied());
    for i in 0..sigma.len() {
        queries.push(Query { poly: sigma_base + i, point: x });
    }
    polys.push(&h_poly);
    queries.push(Query { poly: polys.len() - 1, point: x });
    polys.push(&random_poly);
    queries.push(Query { poly: polys.len() - 1, point: x });
    shplonk::open(&ctx, &polys, &queries, transcript)
}
