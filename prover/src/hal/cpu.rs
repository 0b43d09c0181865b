//! The CPU back end: rayon over polynomials, halo2curves' MSM and
//! halo2-axiom's FFT inside each.

use halo2_proofs::{
    arithmetic::best_multiexp,
    halo2curves::{
        bn256::{Bn256, Fr, G1Affine, G1},
        ff::BatchInvert,
        group::Curve,
    },
    poly::{kzg::commitment::ParamsKZG, EvaluationDomain},
};
use rayon::prelude::*;

use super::{check_domain, check_len, check_parts, srs_bases, Backend, Bases, Hal};
use crate::ProverError;

/// Elements per rayon task of [`CpuHal::batch_invert`].
const INVERT_CHUNK: usize = 1 << 12;

/// The CPU Hal (always available).
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuHal;

impl Hal for CpuHal {
    fn name(&self) -> String {
        format!("cpu ({} threads)", rayon::current_num_threads())
    }

    fn backend(&self) -> Backend {
        Backend::Cpu
    }

    fn commit(&self, params: &ParamsKZG<Bn256>, bases: Bases, polys: &[&[Fr]]) -> Result<Vec<G1Affine>, ProverError> {
        let g = srs_bases(params, bases)?;
        for p in polys {
            check_len(params, p.len())?;
        }
        let projective: Vec<G1> = polys.par_iter().map(|p| best_multiexp(p, &g[..p.len()])).collect();
        let mut affine = vec![G1Affine::default(); projective.len()];
        G1::batch_normalize(&projective, &mut affine);
        Ok(affine)
    }

    fn lagrange_to_coeff(&self, domain: &EvaluationDomain<Fr>, polys: &mut [Vec<Fr>]) -> Result<(), ProverError> {
        check_domain(domain, polys)?;
        polys.par_iter_mut().for_each(|p| {
            let values = std::mem::take(p);
            *p = domain.lagrange_to_coeff(domain.lagrange_from_vec(values)).into_values();
        });
        Ok(())
    }

    fn coeff_to_extended_part(
        &self,
        domain: &EvaluationDomain<Fr>,
        polys: &[&[Fr]],
        factor: Fr,
    ) -> Result<Vec<Vec<Fr>>, ProverError> {
        check_domain(domain, polys)?;
        Ok(polys
            .par_iter()
            .map(|p| domain.coeff_to_extended_part(domain.coeff_from_vec(p.to_vec()), factor).into_values())
            .collect())
    }

    fn quotient_to_coeff(&self, domain: &EvaluationDomain<Fr>, parts: Vec<Vec<Fr>>) -> Result<Vec<Fr>, ProverError> {
        check_parts(domain, &parts)?;
        let parts = parts.into_iter().map(|p| domain.lagrange_from_vec(p)).collect();
        let extended = domain.divide_by_vanishing_poly(domain.extended_from_lagrange_vec(parts));
        Ok(domain.extended_to_coeff(extended))
    }

    fn batch_invert(&self, values: &mut [Fr]) -> Result<(), ProverError> {
        values.par_chunks_mut(INVERT_CHUNK).for_each(|c| {
            c.batch_invert();
        });
        Ok(())
    }
}
