//! The differential tester: every operation on two Hals, results compared.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};

use halo2_proofs::{
    halo2curves::bn256::{Bn256, Fr, G1Affine},
    poly::{kzg::commitment::ParamsKZG, EvaluationDomain},
};

use super::{merge_traffic, Backend, Bases, Hal, TrafficReport};
use crate::ProverError;

/// Runs each operation on `A` and on `B` and returns `A`'s result when they
/// agree; the first operation where they differ is an error naming it, the
/// element and both values.
#[derive(Debug)]
pub struct DualHal<A, B> {
    a: A,
    b: B,
    compared: AtomicUsize,
}

impl<A: Hal, B: Hal> DualHal<A, B> {
    /// Compares `a` against `b`.
    pub fn new(a: A, b: B) -> Self {
        DualHal { a, b, compared: AtomicUsize::new(0) }
    }

    /// Operations compared so far.
    pub fn compared(&self) -> usize {
        self.compared.load(Ordering::Relaxed)
    }

    fn check<T: PartialEq + fmt::Debug>(&self, op: &str, a: &[T], b: &[T]) -> Result<(), ProverError> {
        let n = self.compared.fetch_add(1, Ordering::Relaxed);
        if a.len() != b.len() {
            return Err(ProverError::Hal(format!(
                "DualHal: operation #{n} ({op}): {} gives {} results, {} gives {}",
                self.a.name(),
                a.len(),
                self.b.name(),
                b.len()
            )));
        }
        match a.iter().zip(b).position(|(x, y)| x != y) {
            None => Ok(()),
            Some(i) => Err(ProverError::Hal(format!(
                "DualHal: operation #{n} ({op}) differs at element {i}: {} gives {:?}, {} gives {:?}",
                self.a.name(),
                a[i],
                self.b.name(),
                b[i]
            ))),
        }
    }
}

impl<A: Hal, B: Hal> Hal for DualHal<A, B> {
    fn name(&self) -> String {
        format!("dual({}, {})", self.a.name(), self.b.name())
    }

    /// The back end whose results it returns.
    fn backend(&self) -> Backend {
        self.a.backend()
    }

    fn commit(&self, params: &ParamsKZG<Bn256>, bases: Bases, polys: &[&[Fr]]) -> Result<Vec<G1Affine>, ProverError> {
        let a = self.a.commit(params, bases, polys)?;
        let b = self.b.commit(params, bases, polys)?;
        self.check(&format!("commit {bases:?}"), &a, &b)?;
        Ok(a)
    }

    fn lagrange_to_coeff(&self, domain: &EvaluationDomain<Fr>, polys: &mut [Vec<Fr>]) -> Result<(), ProverError> {
        let mut other = polys.to_vec();
        self.a.lagrange_to_coeff(domain, polys)?;
        self.b.lagrange_to_coeff(domain, &mut other)?;
        self.check("lagrange_to_coeff", polys, &other)
    }

    fn commit_and_interpolate(
        &self,
        params: &ParamsKZG<Bn256>,
        domain: &EvaluationDomain<Fr>,
        polys: &mut [Vec<Fr>],
    ) -> Result<Vec<G1Affine>, ProverError> {
        let mut other = polys.to_vec();
        let a = self.a.commit_and_interpolate(params, domain, polys)?;
        let b = self.b.commit_and_interpolate(params, domain, &mut other)?;
        self.check("commit_and_interpolate: commitments", &a, &b)?;
        self.check("commit_and_interpolate: coefficients", polys, &other)?;
        Ok(a)
    }

    fn coeff_to_extended_part(
        &self,
        domain: &EvaluationDomain<Fr>,
        polys: &[&[Fr]],
        factor: Fr,
    ) -> Result<Vec<Vec<Fr>>, ProverError> {
        let a = self.a.coeff_to_extended_part(domain, polys, factor)?;
        let b = self.b.coeff_to_extended_part(domain, polys, factor)?;
        self.check("coeff_to_extended_part", &a, &b)?;
        Ok(a)
    }

    /// `A`'s parts are all kept until `B`'s have been compared with them,
    /// then handed on: memory for every part at once (a tester's price).
    fn coeff_to_extended_parts(
        &self,
        domain: &EvaluationDomain<Fr>,
        polys: &[&[Fr]],
        factors: &[Fr],
        each: &mut dyn FnMut(usize, Vec<Vec<Fr>>) -> Result<(), ProverError>,
    ) -> Result<(), ProverError> {
        let mut parts = Vec::with_capacity(factors.len());
        self.a.coeff_to_extended_parts(domain, polys, factors, &mut |_, v| {
            parts.push(v);
            Ok(())
        })?;
        self.b.coeff_to_extended_parts(domain, polys, factors, &mut |i, v| match parts.get(i) {
            Some(a) => self.check(&format!("coeff_to_extended_parts, part {i}"), a, &v),
            None => Err(ProverError::Hal(format!("DualHal: {} gives part {i} of {}", self.b.name(), factors.len()))),
        })?;
        for (i, v) in parts.into_iter().enumerate() {
            each(i, v)?;
        }
        Ok(())
    }

    fn quotient_to_coeff(&self, domain: &EvaluationDomain<Fr>, parts: Vec<Vec<Fr>>) -> Result<Vec<Fr>, ProverError> {
        let a = self.a.quotient_to_coeff(domain, parts.clone())?;
        let b = self.b.quotient_to_coeff(domain, parts)?;
        self.check("quotient_to_coeff", &a, &b)?;
        Ok(a)
    }

    fn batch_invert(&self, values: &mut [Fr]) -> Result<(), ProverError> {
        let mut other = values.to_vec();
        self.a.batch_invert(values)?;
        self.b.batch_invert(&mut other)?;
        self.check("batch_invert", values, &other)
    }

    /// Both sides' traffic, summed per operation.
    fn traffic(&self) -> TrafficReport {
        merge_traffic(self.a.traffic(), self.b.traffic())
    }
}
