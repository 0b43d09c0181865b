//! Witness synthesis through halo2-axiom's public `Assignment` API, with the
//! phase commitments of halo2-axiom's `create_proof`: at the end of each
//! phase its advice columns are made concrete (fractions inverted through the
//! Hal), blinded, committed, and the phase's challenges squeezed.

use std::collections::HashMap;
use std::marker::PhantomData;

use halo2_proofs::{
    circuit::Value,
    halo2curves::{
        bn256::{Fr, G1Affine},
        ff::Field,
    },
    plonk::{
        Advice, Any, Assigned, Assignment, Challenge, Circuit, Column, Error, Fixed, FloorPlanner, Instance, Selector,
    },
    transcript::{EncodedChallenge, TranscriptWrite},
};
use rand::RngCore;

use super::Ctx;
use crate::ProverError;

/// The committed advice of all phases, one per column: Lagrange values and
/// coefficients.
pub(crate) struct Synthesized {
    pub values: Vec<Vec<Fr>>,
    pub coeffs: Vec<Vec<Fr>>,
    pub challenges: Vec<Fr>,
}

struct Collection<'c, 'a, E, T, R> {
    ctx: &'c Ctx<'a>,
    phase: u8,
    advice: Vec<Vec<Assigned<Fr>>>,
    values: Vec<Vec<Fr>>,
    coeffs: Vec<Vec<Fr>>,
    instances: &'c [&'c [Fr]],
    challenges: HashMap<usize, Fr>,
    rng: &'c mut R,
    transcript: &'c mut T,
    error: Option<ProverError>,
    _e: PhantomData<E>,
}

impl<E: EncodedChallenge<G1Affine>, T: TranscriptWrite<G1Affine, E>, R: RngCore> Collection<'_, '_, E, T, R> {
    fn fail(&mut self, e: ProverError) {
        self.error.get_or_insert(e);
    }

    /// Commits the advice columns of the current phase and squeezes its
    /// challenges, in halo2-axiom's order: (phase 0) the instances absorbed,
    /// fractions inverted, blinding rows of every column, then one blind per
    /// column, then the commitments, then the challenges.
    fn commit_phase(&mut self) -> Result<(), ProverError> {
        let ctx = self.ctx;
        let phase = self.phase;
        if phase == 0 {
            for v in self.instances.iter().flat_map(|c| c.iter()) {
                self.transcript.common_scalar(*v).map_err(ProverError::io("absorbing an instance"))?;
            }
        }
        let columns: Vec<usize> =
            ctx.column_phase.iter().enumerate().filter(|(_, p)| **p == phase).map(|(i, _)| i).collect();
        // Assigned fractions: invert every non-trivial denominator at once.
        let mut denominators: Vec<Fr> =
            columns.iter().flat_map(|&c| self.advice[c].iter().filter_map(Assigned::denominator)).collect();
        ctx.hal.batch_invert(&mut denominators)?;
        let mut inverses = denominators.into_iter();
        let mut values: Vec<Vec<Fr>> = columns
            .iter()
            .map(|&c| {
                self.advice[c]
                    .iter()
                    .map(|a| match a.denominator() {
                        Some(_) => a.numerator() * inverses.next().unwrap_or(Fr::ZERO),
                        None => a.numerator(),
                    })
                    .collect()
            })
            .collect();
        for v in &mut values {
            for cell in &mut v[ctx.usable_rows..] {
                *cell = Fr::random(&mut *self.rng);
            }
        }
        // halo2-axiom draws a commitment blind per column; KZG commitments do
        // not use it, but the draws keep the RNG stream aligned.
        for _ in &values {
            Fr::random(&mut *self.rng);
        }
        // The commitments, and the coefficients the quotient needs later
        // (a device Hal uploads each column once for both).
        let mut coeffs = values.clone();
        for c in ctx.hal.commit_and_interpolate(ctx.params, ctx.domain, &mut coeffs)? {
            self.transcript.write_point(c).map_err(ProverError::io("writing an advice commitment"))?;
        }
        for ((&c, v), p) in columns.iter().zip(values).zip(coeffs) {
            self.values[c] = v;
            self.coeffs[c] = p;
        }
        for (i, _) in ctx.challenge_phase.iter().enumerate().filter(|(_, p)| **p == phase) {
            self.challenges.insert(i, *self.transcript.squeeze_challenge_scalar::<()>());
        }
        self.phase += 1;
        Ok(())
    }
}

impl<E: EncodedChallenge<G1Affine>, T: TranscriptWrite<G1Affine, E>, R: RngCore> Assignment<Fr>
    for Collection<'_, '_, E, T, R>
{
    fn enter_region<NR, N>(&mut self, _: N)
    where
        NR: Into<String>,
        N: FnOnce() -> NR,
    {
    }

    fn exit_region(&mut self) {}

    fn enable_selector<A, AR>(&mut self, _: A, _: &Selector, _: usize) -> Result<(), Error>
    where
        A: FnOnce() -> AR,
        AR: Into<String>,
    {
        Ok(())
    }

    fn annotate_column<A, AR>(&mut self, _: A, _: Column<Any>)
    where
        A: FnOnce() -> AR,
        AR: Into<String>,
    {
    }

    fn query_instance(&self, column: Column<Instance>, row: usize) -> Result<Value<Fr>, Error> {
        if row >= self.ctx.usable_rows {
            return Err(Error::NotEnoughRowsAvailable { current_k: self.ctx.params_k });
        }
        self.instances
            .get(column.index())
            .and_then(|c| c.get(row))
            .map(|v| Value::known(*v))
            .ok_or(Error::BoundsFailure)
    }

    fn assign_advice<'v>(
        &mut self,
        column: Column<Advice>,
        row: usize,
        to: Value<Assigned<Fr>>,
    ) -> Value<&'v Assigned<Fr>> {
        if row >= self.ctx.usable_rows {
            self.fail(ProverError::Halo2(format!(
                "advice assigned at row {row}, past the {} usable rows of k = {}",
                self.ctx.usable_rows, self.ctx.params_k
            )));
            return Value::unknown();
        }
        let mut assigned = None;
        to.map(|v| assigned = Some(v));
        let Some(v) = assigned else {
            self.fail(ProverError::Halo2(format!("unknown value assigned to advice column {}", column.index())));
            return Value::unknown();
        };
        let Some(cell) = self.advice.get_mut(column.index()).and_then(|c| c.get_mut(row)) else {
            self.fail(ProverError::Halo2(format!("advice column {} does not exist", column.index())));
            return Value::unknown();
        };
        *cell = v;
        let cell: *const Assigned<Fr> = cell;
        // SAFETY: the column vectors are allocated at full size before
        // synthesis and never grow or move while the circuit synthesizes; the
        // reference is what the `Assignment` API hands back to the circuit
        // for the duration of synthesis (halo2-axiom's own prover does the same).
        Value::known(unsafe { &*cell })
    }

    fn assign_fixed(&mut self, _: Column<Fixed>, _: usize, _: Assigned<Fr>) {}

    fn copy(&mut self, _: Column<Any>, _: usize, _: Column<Any>, _: usize) {}

    fn fill_from_row(&mut self, _: Column<Fixed>, _: usize, _: Value<Assigned<Fr>>) -> Result<(), Error> {
        Ok(())
    }

    fn get_challenge(&self, challenge: Challenge) -> Value<Fr> {
        self.challenges.get(&challenge.index()).map(|c| Value::known(*c)).unwrap_or_else(Value::unknown)
    }

    fn push_namespace<NR, N>(&mut self, _: N)
    where
        NR: Into<String>,
        N: FnOnce() -> NR,
    {
    }

    fn pop_namespace(&mut self, _: Option<String>) {}

    fn next_phase(&mut self) {
        if self.error.is_none() {
            if let Err(e) = self.commit_phase() {
                self.fail(e);
            }
        }
    }
}

/// Synthesizes `circuit` phase by phase, committing each phase's advice to
/// `transcript` (preceded, for phase 0, by the instances).
pub(crate) fn synthesize<C, E, T, R>(
    ctx: &Ctx<'_>,
    circuit: &C,
    instances: &[&[Fr]],
    rng: &mut R,
    transcript: &mut T,
) -> Result<Synthesized, ProverError>
where
    C: Circuit<Fr>,
    E: EncodedChallenge<G1Affine>,
    T: TranscriptWrite<G1Affine, E>,
    R: RngCore,
{
    let mut cs = halo2_proofs::plonk::ConstraintSystem::default();
    let config = C::configure_with_params(&mut cs, circuit.params());
    let num_phases = ctx.column_phase.iter().copied().max().map_or(1, |p| p + 1);
    let columns = ctx.cs.num_advice_columns();
    let mut w: Collection<'_, '_, E, T, R> = Collection {
        ctx,
        phase: 0,
        advice: vec![vec![Assigned::Zero; ctx.n]; columns],
        values: vec![vec![]; columns],
        coeffs: vec![vec![]; columns],
        instances,
        challenges: HashMap::new(),
        rng,
        transcript,
        error: None,
        _e: PhantomData,
    };
    // As halo2-axiom: circuits that do not drive phases themselves are
    // synthesized once per phase.
    while w.phase < num_phases {
        let result = C::FloorPlanner::synthesize(&mut w, circuit, config.clone(), ctx.cs.constants().clone());
        // An error recorded by the assignment explains a synthesis failure best.
        if let Some(e) = w.error.take() {
            return Err(e);
        }
        result.map_err(ProverError::halo2("synthesize"))?;
        if w.phase < num_phases {
            w.commit_phase()?;
        }
    }
    let challenges = (0..ctx.cs.num_challenges())
        .map(|i| {
            w.challenges.get(&i).copied().ok_or_else(|| ProverError::Halo2(format!("challenge {i} never squeezed")))
        })
        .collect::<Result<_, _>>()?;
    Ok(Synthesized { values: w.values, coeffs: w.coeffs, challenges })
}
