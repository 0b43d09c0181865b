//! Cooperative cancellation: [`Cancellable`] wraps a Hal and refuses its
//! next operation once its [`CancelFlag`] is raised, so a proof stops
//! between Hal operations (within one MSM or transform of the raise) with
//! [`ProverError::Cancelled`] instead of running to its end.

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc,
};

use halo2_proofs::{
    halo2curves::bn256::{Bn256, Fr, G1Affine},
    poly::{kzg::commitment::ParamsKZG, EvaluationDomain},
};

use super::{Backend, Bases, Hal, TrafficReport};
use crate::ProverError;

/// Raised once to stop the proofs on the Hals that share it.
#[derive(Debug, Clone, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    /// A flag not raised.
    pub fn new() -> Self {
        Self::default()
    }

    /// Raises it: the next operation of every Hal sharing it fails.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether it was raised.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    fn check(&self) -> Result<(), ProverError> {
        if self.is_cancelled() {
            Err(ProverError::Cancelled)
        } else {
            Ok(())
        }
    }
}

/// A Hal whose operations fail with [`ProverError::Cancelled`] once its flag
/// is raised; until then it is the Hal it wraps, operation for operation.
#[derive(Debug)]
pub struct Cancellable {
    inner: Arc<dyn Hal>,
    flag: CancelFlag,
}

impl Cancellable {
    /// `inner`, stopped by `flag`.
    pub fn new(inner: Arc<dyn Hal>, flag: CancelFlag) -> Self {
        Cancellable { inner, flag }
    }
}

impl Hal for Cancellable {
    fn name(&self) -> String {
        self.inner.name()
    }

    fn backend(&self) -> Backend {
        self.inner.backend()
    }

    fn commit(&self, params: &ParamsKZG<Bn256>, bases: Bases, polys: &[&[Fr]]) -> Result<Vec<G1Affine>, ProverError> {
        self.flag.check()?;
        self.inner.commit(params, bases, polys)
    }

    fn lagrange_to_coeff(&self, domain: &EvaluationDomain<Fr>, polys: &mut [Vec<Fr>]) -> Result<(), ProverError> {
        self.flag.check()?;
        self.inner.lagrange_to_coeff(domain, polys)
    }

    fn commit_and_interpolate(
        &self,
        params: &ParamsKZG<Bn256>,
        domain: &EvaluationDomain<Fr>,
        polys: &mut [Vec<Fr>],
    ) -> Result<Vec<G1Affine>, ProverError> {
        self.flag.check()?;
        self.inner.commit_and_interpolate(params, domain, polys)
    }

    fn coeff_to_extended_part(
        &self,
        domain: &EvaluationDomain<Fr>,
        polys: &[&[Fr]],
        factor: Fr,
    ) -> Result<Vec<Vec<Fr>>, ProverError> {
        self.flag.check()?;
        self.inner.coeff_to_extended_part(domain, polys, factor)
    }

    fn coeff_to_extended_parts(
        &self,
        domain: &EvaluationDomain<Fr>,
        polys: &[&[Fr]],
        factors: &[Fr],
        each: &mut dyn FnMut(usize, Vec<Vec<Fr>>) -> Result<(), ProverError>,
    ) -> Result<(), ProverError> {
        self.flag.check()?;
        // between parts too: the quotient's evaluation is a proof's longest stretch
        self.inner.coeff_to_extended_parts(domain, polys, factors, &mut |i, part| {
            self.flag.check()?;
            each(i, part)
        })
    }

    fn quotient_to_coeff(&self, domain: &EvaluationDomain<Fr>, parts: Vec<Vec<Fr>>) -> Result<Vec<Fr>, ProverError> {
        self.flag.check()?;
        self.inner.quotient_to_coeff(domain, parts)
    }

    fn batch_invert(&self, values: &mut [Fr]) -> Result<(), ProverError> {
        self.flag.check()?;
        self.inner.batch_invert(values)
    }

    fn traffic(&self) -> TrafficReport {
        self.inner.traffic()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hal::CpuHal;

    #[test]
    fn a_raised_flag_stops_the_next_operation_and_only_then() {
        let flag = CancelFlag::new();
        let hal = Cancellable::new(Arc::new(CpuHal), flag.clone());
        let mut values = vec![Fr::from(2), Fr::from(0), Fr::from(4)];
        hal.batch_invert(&mut values).unwrap();
        assert_eq!(values[0] * Fr::from(2), Fr::one(), "the wrapped Hal's result while not raised");
        flag.cancel();
        assert!(matches!(hal.batch_invert(&mut values), Err(ProverError::Cancelled)));
        let domain = EvaluationDomain::<Fr>::new(1, 2);
        let mut polys = vec![vec![Fr::one(); 4]];
        assert!(matches!(hal.lagrange_to_coeff(&domain, &mut polys), Err(ProverError::Cancelled)));
        assert_eq!(polys[0], vec![Fr::one(); 4], "nothing was computed");
    }
}
