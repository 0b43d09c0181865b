//! Evaluating a circuit's expressions over columns of n values (Lagrange
//! values or one coset part of the extended domain: in both, a rotation by r
//! is an index shift by r, wrapping around n).

use halo2_proofs::{
    halo2curves::{bn256::Fr, ff::Field},
    plonk::Expression,
    poly::Rotation,
};
use rayon::prelude::*;

use crate::ProverError;

/// Rows evaluated together (one rayon task, one temporary per node).
pub(crate) const CHUNK: usize = 1 << 10;

/// The columns an expression reads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Columns<'a> {
    pub fixed: &'a [&'a [Fr]],
    pub advice: &'a [&'a [Fr]],
    pub instance: &'a [&'a [Fr]],
    pub challenges: &'a [Fr],
    /// Rows of every column.
    pub n: usize,
}

/// The row `row` rotated by `rot`, modulo n.
pub(crate) fn rotate(row: usize, rot: i32, n: usize) -> usize {
    (row as i64 + rot as i64).rem_euclid(n as i64) as usize
}

fn column<'a>(cols: &[&'a [Fr]], index: usize, kind: &str) -> Result<&'a [Fr], ProverError> {
    cols.get(index)
        .copied()
        .ok_or_else(|| ProverError::Halo2(format!("the circuit queries missing {kind} column {index}")))
}

impl Columns<'_> {
    /// `expr` on rows `start..start + out.len()`, into `out`.
    pub fn eval_into(&self, expr: &Expression<Fr>, start: usize, out: &mut [Fr]) -> Result<(), ProverError> {
        let query = |col: &[Fr], rot: Rotation, out: &mut [Fr]| {
            for (i, o) in out.iter_mut().enumerate() {
                *o = col[rotate(start + i, rot.0, self.n)];
            }
        };
        match expr {
            Expression::Constant(c) => out.fill(*c),
            Expression::Selector(_) => {
                return Err(ProverError::Halo2("a selector left in the proving key's gates".into()));
            }
            Expression::Fixed(q) => query(column(self.fixed, q.column_index(), "fixed")?, q.rotation(), out),
            Expression::Advice(q) => query(column(self.advice, q.column_index(), "advice")?, q.rotation(), out),
            Expression::Instance(q) => query(column(self.instance, q.column_index(), "instance")?, q.rotation(), out),
            Expression::Challenge(c) => out.fill(
                *self
                    .challenges
                    .get(c.index())
                    .ok_or_else(|| ProverError::Halo2(format!("missing challenge {}", c.index())))?,
            ),
            Expression::Negated(a) => {
                self.eval_into(a, start, out)?;
                out.iter_mut().for_each(|o| *o = -*o);
            }
            Expression::Scaled(a, s) => {
                self.eval_into(a, start, out)?;
                out.iter_mut().for_each(|o| *o *= s);
            }
            Expression::Sum(a, b) | Expression::Product(a, b) => {
                self.eval_into(a, start, out)?;
                let mut tmp = vec![Fr::ZERO; out.len()];
                self.eval_into(b, start, &mut tmp)?;
                if matches!(expr, Expression::Sum(..)) {
                    out.iter_mut().zip(&tmp).for_each(|(o, t)| *o += t);
                } else {
                    out.iter_mut().zip(&tmp).for_each(|(o, t)| *o *= t);
                }
            }
        }
        Ok(())
    }

    /// `exprs` compressed with `theta` (Horner: e_0 theta^(m-1) + ... + e_(m-1))
    /// on every row.
    pub fn compress(&self, exprs: &[Expression<Fr>], theta: Fr) -> Result<Vec<Fr>, ProverError> {
        let mut out = vec![Fr::ZERO; self.n];
        out.par_chunks_mut(CHUNK)
            .enumerate()
            .try_for_each(|(c, out)| self.compress_into(exprs, theta, c * CHUNK, out))?;
        Ok(out)
    }

    /// [`Columns::compress`] on rows `start..start + out.len()`.
    pub fn compress_into(
        &self,
        exprs: &[Expression<Fr>],
        theta: Fr,
        start: usize,
        out: &mut [Fr],
    ) -> Result<(), ProverError> {
        out.fill(Fr::ZERO);
        let mut tmp = vec![Fr::ZERO; out.len()];
        for e in exprs {
            self.eval_into(e, start, &mut tmp)?;
            out.iter_mut().zip(&tmp).for_each(|(o, t)| *o = *o * theta + t);
        }
        Ok(())
    }
}
