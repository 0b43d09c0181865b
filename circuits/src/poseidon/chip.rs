// Gates and rows walk the state, auxiliary and fixed columns by index together.
#![allow(clippy::needless_range_loop)]

//! The Poseidon permutation on its own custom gates, beside halo2-base's
//! gates in the batch circuit.
//!
//! A width-`T` permutation is laid out on `2T` advice columns (`T` for the
//! state, `T` auxiliary) and `P + T` fixed columns, `P = (T + 1) / 2`:
//!
//! * a full round per row: `aux_j = (s_j + c_j)^2` and the next row's state
//!   `s'_i = Σ_j M_ij · aux_j^2 · (s_j + c_j)`;
//! * `P` partial rounds per row (and one row for the remainder): the S-box
//!   inputs of the row's later rounds and their squares sit in the auxiliary
//!   columns; everything else of a partial round is linear, so the next row's
//!   state is a fixed linear form of the row's state and S-box outputs plus
//!   per-row constants (fixed columns);
//! * an absorb row between two permutations of one sponge: the next
//!   permutation's input is this one's output plus the message in `aux`.
//!
//! Storing the square of each S-box input keeps every constraint at degree 4
//! (selector included), inside the degree halo2-base's lookups already
//! need, so the quotient's extended domain does not grow.
//!
//! Width 5 takes `R_F + R_P / 3 = 28` rows and one output row, 290 advice
//! cells, per permutation (halo2-base's flex gate: ≈ 2,900 for width 4).
//!
//! The batch circuit records each hash as a [`HashJob`] while halo2-base lays
//! out its virtual cells; [`PoseidonConfig::assign`] then lays out every job
//! and ties its inputs and output to halo2-base's cells by copy constraints.

use halo2_base::{
    halo2_proofs::{
        arithmetic::Field,
        circuit::{Cell, Region, Value},
        halo2curves::bn256::Fr,
        plonk::{Advice, Column, ConstraintSystem, Expression, Fixed, Selector},
        poly::Rotation,
    },
    AssignedValue,
};

use super::{chunks, Params};

/// Partial rounds per row at width `t`.
pub const fn partial_per_row(t: usize) -> usize {
    t.div_ceil(2)
}

/// A linear form over a partial row's variables: the state `s_0..s_{T-1}`
/// at the row's start and the S-box outputs `z_1..z_n` of its rounds, plus a
/// constant.
#[derive(Debug, Clone)]
struct Lin<const T: usize> {
    s: [Fr; T],
    z: Vec<Fr>,
    k: Fr,
}

impl<const T: usize> Lin<T> {
    fn var_s(j: usize, n: usize) -> Self {
        let mut s = [Fr::ZERO; T];
        s[j] = Fr::ONE;
        Lin { s, z: vec![Fr::ZERO; n], k: Fr::ZERO }
    }
    fn var_z(k: usize, n: usize) -> Self {
        let mut z = vec![Fr::ZERO; n];
        z[k] = Fr::ONE;
        Lin { s: [Fr::ZERO; T], z, k: Fr::ZERO }
    }
    fn plus(mut self, c: Fr) -> Self {
        self.k += c;
        self
    }
    fn combine(terms: &[Lin<T>], coeffs: &[Fr; T]) -> Self {
        let n = terms[0].z.len();
        let mut out = Lin { s: [Fr::ZERO; T], z: vec![Fr::ZERO; n], k: Fr::ZERO };
        for (t, m) in terms.iter().zip(coeffs) {
            for j in 0..T {
                out.s[j] += t.s[j] * m;
            }
            for k in 0..n {
                out.z[k] += t.z[k] * m;
            }
            out.k += t.k * m;
        }
        out
    }
}

/// The linear structure of a row of `n` partial rounds starting at round `r0`:
/// the S-box inputs `x_1..x_n` and the state after the row.
struct PartialPlan<const T: usize> {
    x: Vec<Lin<T>>,
    out: [Lin<T>; T],
}

fn partial_plan<const T: usize>(p: &Params<T>, r0: usize, n: usize) -> PartialPlan<T> {
    let mut cur: [Lin<T>; T] = std::array::from_fn(|j| Lin::var_s(j, n));
    let mut x = vec![];
    for k in 0..n {
        let rc = &p.rc[r0 + k];
        x.push(cur[0].clone().plus(rc[0]));
        let y: Vec<Lin<T>> =
            (0..T).map(|j| if j == 0 { Lin::var_z(k, n) } else { cur[j].clone().plus(rc[j]) }).collect();
        cur = std::array::from_fn(|i| Lin::combine(&y, &p.mds[i]));
    }
    PartialPlan { x, out: cur }
}

/// What a row does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RowKind {
    Full,
    Partial,
    Remainder,
    Absorb,
    Output,
}

/// One row's values.
#[derive(Debug, Clone)]
struct Row<const T: usize> {
    kind: RowKind,
    state: [Fr; T],
    aux: [Fr; T],
    fixed: Vec<Fr>,
}

/// One hash of the batch circuit: its inputs, the capacity and zero cells
/// (halo2-base constants), and the output cell.
#[derive(Debug, Clone)]
pub struct HashJob {
    /// What the hash is of.
    pub domain: super::Domain,
    /// Capacity element's cell.
    pub capacity: AssignedValue<Fr>,
    /// Inputs, padded with the zero cell to whole chunks.
    pub inputs: Vec<AssignedValue<Fr>>,
    /// The digest's cell.
    pub output: AssignedValue<Fr>,
}

/// Rows one round section of a permutation takes (without its output row).
pub fn round_rows<const T: usize>(p: &Params<T>) -> usize {
    let per = partial_per_row(T);
    p.r_f + p.r_p / per + usize::from(!p.r_p.is_multiple_of(per))
}

/// Rows a hash of `len` inputs takes.
pub fn hash_rows<const T: usize>(p: &Params<T>, len: usize) -> usize {
    chunks_of::<T>(len) * (round_rows(p) + 1)
}

fn chunks_of<const T: usize>(len: usize) -> usize {
    if T == super::WIDTH {
        chunks(len)
    } else {
        len.div_ceil(T - 1).max(1)
    }
}

/// The rows of one permutation of `s`, ending with its output row (kind
/// `Output`; the caller turns it into an absorb row).
fn permutation_rows<const T: usize>(p: &Params<T>, s: &mut [Fr; T], rows: &mut Vec<Row<T>>) {
    let per = partial_per_row(T);
    let half = p.r_f / 2;
    let mut r = 0;
    while r < p.rc.len() {
        let mut row = Row { kind: RowKind::Full, state: *s, aux: [Fr::ZERO; T], fixed: vec![Fr::ZERO; per + T] };
        if p.is_full(r) {
            let rc = &p.rc[r];
            let x: [Fr; T] = std::array::from_fn(|j| s[j] + rc[j]);
            for j in 0..T {
                row.aux[j] = x[j].square();
                row.fixed[j] = rc[j];
            }
            *s = p.mds_mul(&x.map(super::pow5));
            r += 1;
        } else {
            let n = per.min(half + p.r_p - r);
            row.kind = if n == per { RowKind::Partial } else { RowKind::Remainder };
            let plan = partial_plan(p, r, n);
            row.fixed[0] = plan.x[0].k;
            for k in 1..n {
                row.fixed[k] = plan.x[k].k;
            }
            for i in 0..T {
                row.fixed[n + i] = plan.out[i].k;
            }
            for k in 0..n {
                let rc = &p.rc[r + k];
                let x = s[0] + rc[0];
                if k > 0 {
                    row.aux[2 * k - 1] = x;
                }
                row.aux[2 * k] = x.square();
                let mut y: [Fr; T] = std::array::from_fn(|j| s[j] + rc[j]);
                y[0] = super::pow5(x);
                *s = p.mds_mul(&y);
            }
            r += n;
        }
        rows.push(row);
    }
    rows.push(Row { kind: RowKind::Output, state: *s, aux: [Fr::ZERO; T], fixed: vec![Fr::ZERO; per + T] });
}

/// The rows of a sponge over `inputs` (already padded to whole chunks of
/// `T - 1`) starting from `capacity`; returns them and the digest.
fn sponge_rows<const T: usize>(p: &Params<T>, capacity: Fr, inputs: &[Fr]) -> (Vec<Row<T>>, Fr) {
    let rate = T - 1;
    let mut s = [Fr::ZERO; T];
    s[0] = capacity;
    s[1..].copy_from_slice(&inputs[..rate]);
    let mut rows = vec![];
    for c in 0..inputs.len() / rate {
        permutation_rows(p, &mut s, &mut rows);
        if let Some(next) = inputs.get((c + 1) * rate..(c + 2) * rate) {
            let last = rows.last_mut().expect("a permutation has rows");
            last.kind = RowKind::Absorb;
            last.aux[..rate].copy_from_slice(next);
            for i in 0..rate {
                s[1 + i] += next[i];
            }
        }
    }
    // the absorb rows' successors are the next permutation's first rows,
    // whose state already includes the message
    (rows, s[1])
}

/// The columns, selectors and gates of the chip.
#[derive(Debug, Clone)]
pub struct PoseidonConfig<const T: usize> {
    state: [Column<Advice>; T],
    aux: [Column<Advice>; T],
    fixed: Vec<Column<Fixed>>,
    q_full: Selector,
    q_partial: Selector,
    q_remainder: Option<Selector>,
    q_absorb: Selector,
}

impl<const T: usize> PoseidonConfig<T> {
    /// The chip's advice columns (state, then auxiliary), equality enabled:
    /// other chips may lay out their rows on them below the hashes.
    pub fn advice_columns(&self) -> Vec<Column<Advice>> {
        self.state.iter().chain(&self.aux).copied().collect()
    }

    /// The chip's fixed columns (meaningful only on its own rows).
    pub fn fixed_columns(&self) -> &[Column<Fixed>] {
        &self.fixed
    }

    /// Adds the chip's columns and gates to `meta`.
    pub fn configure(meta: &mut ConstraintSystem<Fr>, p: &Params<T>) -> Self {
        let per = partial_per_row(T);
        assert!(T % 2 == 1 && 2 * per - 1 <= T, "the partial rows' S-box inputs fit the auxiliary columns");
        let state = std::array::from_fn(|_| meta.advice_column());
        let aux = std::array::from_fn(|_| meta.advice_column());
        for c in state.iter().chain(&aux) {
            meta.enable_equality(*c);
        }
        let fixed: Vec<Column<Fixed>> = (0..per + T).map(|_| meta.fixed_column()).collect();
        let config = PoseidonConfig {
            state,
            aux,
            fixed,
            q_full: meta.selector(),
            q_partial: meta.selector(),
            q_remainder: (!p.r_p.is_multiple_of(per)).then(|| meta.selector()),
            q_absorb: meta.selector(),
        };
        config.full_gate(meta, p);
        let half = p.r_f / 2;
        config.partial_gate(meta, p, config.q_partial, half, per);
        if let Some(q) = config.q_remainder {
            config.partial_gate(meta, p, q, half + p.r_p - p.r_p % per, p.r_p % per);
        }
        let q = config.q_absorb;
        meta.create_gate("poseidon absorb", |m| {
            let q = m.query_selector(q);
            let s: [Expression<Fr>; T] = std::array::from_fn(|j| m.query_advice(config.state[j], Rotation::cur()));
            let next: [Expression<Fr>; T] = std::array::from_fn(|j| m.query_advice(config.state[j], Rotation::next()));
            let mut out = vec![q.clone() * (next[0].clone() - s[0].clone())];
            for i in 1..T {
                let msg = m.query_advice(config.aux[i - 1], Rotation::cur());
                out.push(q.clone() * (next[i].clone() - s[i].clone() - msg));
            }
            out
        });
        config
    }

    fn full_gate(&self, meta: &mut ConstraintSystem<Fr>, p: &Params<T>) {
        let mds = p.mds;
        meta.create_gate("poseidon full round", |m| {
            let q = m.query_selector(self.q_full);
            let x: Vec<Expression<Fr>> = (0..T)
                .map(|j| m.query_advice(self.state[j], Rotation::cur()) + m.query_fixed(self.fixed[j], Rotation::cur()))
                .collect();
            let a: Vec<Expression<Fr>> = (0..T).map(|j| m.query_advice(self.aux[j], Rotation::cur())).collect();
            let mut out = vec![];
            for j in 0..T {
                out.push(q.clone() * (a[j].clone() - x[j].clone() * x[j].clone()));
            }
            for (i, row) in mds.iter().enumerate() {
                let next = m.query_advice(self.state[i], Rotation::next());
                let mixed = (0..T)
                    .map(|j| a[j].clone() * a[j].clone() * x[j].clone() * Expression::Constant(row[j]))
                    .reduce(|acc, e| acc + e)
                    .expect("T > 0");
                out.push(q.clone() * (next - mixed));
            }
            out
        });
    }

    /// The gate of a row of `n` partial rounds (its constants are the
    /// fixed columns; the linear coefficients are the same on every row).
    fn partial_gate(&self, meta: &mut ConstraintSystem<Fr>, p: &Params<T>, q: Selector, r0: usize, n: usize) {
        let plan = partial_plan(p, r0, n);
        meta.create_gate("poseidon partial rounds", |m| {
            let q = m.query_selector(q);
            let s: Vec<Expression<Fr>> = (0..T).map(|j| m.query_advice(self.state[j], Rotation::cur())).collect();
            let aux: Vec<Expression<Fr>> = (0..T).map(|j| m.query_advice(self.aux[j], Rotation::cur())).collect();
            let f: Vec<Expression<Fr>> = self.fixed.iter().map(|c| m.query_fixed(*c, Rotation::cur())).collect();
            let lin = |l: &Lin<T>, z: &[Expression<Fr>], konst: Expression<Fr>| {
                let mut e = konst;
                for j in 0..T {
                    if l.s[j] != Fr::ZERO {
                        e = e + s[j].clone() * Expression::Constant(l.s[j]);
                    }
                }
                for (k, zk) in z.iter().enumerate() {
                    if l.z[k] != Fr::ZERO {
                        e = e + zk.clone() * Expression::Constant(l.z[k]);
                    }
                }
                e
            };
            let mut out = vec![];
            let mut z: Vec<Expression<Fr>> = vec![];
            for k in 0..n {
                let x = if k == 0 {
                    s[0].clone() + f[0].clone()
                } else {
                    let x = aux[2 * k - 1].clone();
                    out.push(q.clone() * (x.clone() - lin(&plan.x[k], &z, f[k].clone())));
                    x
                };
                let sq = aux[2 * k].clone();
                out.push(q.clone() * (sq.clone() - x.clone() * x.clone()));
                z.push(sq.clone() * sq * x);
            }
            for i in 0..T {
                let next = m.query_advice(self.state[i], Rotation::next());
                out.push(q.clone() * (next - lin(&plan.out[i], &z, f[n + i].clone())));
            }
            out
        });
    }

    /// Lays out `jobs` from row 0; `cell_of` maps a halo2-base cell to its
    /// physical cell (`None` when witnesses only are generated: no copy
    /// constraints then). Returns the rows used.
    pub fn assign(
        &self,
        region: &mut Region<'_, Fr>,
        p: &Params<T>,
        jobs: &[HashJob],
        cell_of: &dyn Fn(&AssignedValue<Fr>) -> Option<Cell>,
    ) -> usize {
        let rate = T - 1;
        let mut offset = 0;
        for job in jobs {
            let inputs: Vec<Fr> = job.inputs.iter().map(|v| *v.value()).collect();
            let (rows, digest) = sponge_rows(p, *job.capacity.value(), &inputs);
            #[cfg(test)]
            let rows = tamper::apply(rows);
            debug_assert_eq!(digest, *job.output.value(), "a hash job's output is its digest");
            let mut copies: Vec<(Cell, &AssignedValue<Fr>)> = vec![];
            let mut chunk = 0;
            for (i, row) in rows.iter().enumerate() {
                let at = offset + i;
                let state: Vec<Cell> = (0..T)
                    .map(|j| region.assign_advice(self.state[j], at, Value::known(row.state[j])).cell())
                    .collect();
                if i == 0 {
                    copies.push((state[0], &job.capacity));
                    for j in 0..rate {
                        copies.push((state[1 + j], &job.inputs[j]));
                    }
                }
                let aux: Vec<Cell> =
                    (0..T).map(|j| region.assign_advice(self.aux[j], at, Value::known(row.aux[j])).cell()).collect();
                for (c, v) in self.fixed.iter().zip(&row.fixed) {
                    region.assign_fixed(*c, at, *v);
                }
                let sel = match row.kind {
                    RowKind::Full => Some(self.q_full),
                    RowKind::Partial => Some(self.q_partial),
                    RowKind::Remainder => self.q_remainder,
                    RowKind::Absorb => Some(self.q_absorb),
                    RowKind::Output => None,
                };
                if let Some(q) = sel {
                    q.enable(region, at).expect("selector rows are inside the region");
                }
                if row.kind == RowKind::Absorb {
                    chunk += 1;
                    for j in 0..rate {
                        copies.push((aux[j], &job.inputs[chunk * rate + j]));
                    }
                }
                if i == rows.len() - 1 {
                    copies.push((state[1], &job.output));
                }
            }
            for (cell, v) in copies {
                if let Some(other) = cell_of(v) {
                    region.constrain_equal(cell, other);
                }
            }
            offset += rows.len();
        }
        offset
    }
}

/// Witness tampering for the negative tests: applied to every job's rows.
#[cfg(test)]
pub(crate) mod tamper {
    use std::cell::Cell;

    use super::{Field, Fr, Row};

    /// What to break.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Tamper {
        /// Nothing.
        None,
        /// The state after this row's S-boxes is off by one.
        SboxOutput(usize),
        /// This row's round constant is not the one the witness used.
        RoundConstant(usize),
    }

    thread_local! {
        /// The tampering of this thread's next syntheses.
        pub(crate) static TAMPER: Cell<Tamper> = const { Cell::new(Tamper::None) };
    }

    pub(super) fn apply<const T: usize>(mut rows: Vec<Row<T>>) -> Vec<Row<T>> {
        match TAMPER.with(Cell::get) {
            Tamper::None => {}
            Tamper::SboxOutput(r) => rows[r + 1].state[0] += Fr::ONE,
            Tamper::RoundConstant(r) => rows[r].fixed[0] += Fr::ONE,
        }
        rows
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::poseidon::{params, params3};

    #[test]
    fn rows_are_the_permutation() {
        fn check<const T: usize>(p: &Params<T>) {
            let input: Vec<Fr> = (0..2 * (T - 1)).map(|i| Fr::from(i as u64 + 3)).collect();
            let (rows, digest) = sponge_rows(p, Fr::from(9), &input);
            let mut s = [Fr::ZERO; T];
            s[0] = Fr::from(9);
            for c in 0..2 {
                for i in 0..T - 1 {
                    s[1 + i] += input[c * (T - 1) + i];
                }
                p.permute(&mut s);
            }
            assert_eq!(digest, s[1]);
            assert_eq!(rows.len(), 2 * (round_rows(p) + 1));
            assert_eq!(rows.len(), hash_rows(p, 2 * (T - 1)));
            // the linear coefficients of a partial row do not depend on the row
            let per = partial_per_row(T);
            let a = partial_plan(p, p.r_f / 2, per);
            let b = partial_plan(p, p.r_f / 2 + per, per);
            for (x, y) in a.out.iter().zip(&b.out) {
                assert_eq!((x.s, &x.z), (y.s, &y.z));
            }
        }
        check(params());
        check(params3());
        assert_eq!(round_rows(params()), 28);
        assert_eq!(round_rows(params3()), 37);
    }
}
