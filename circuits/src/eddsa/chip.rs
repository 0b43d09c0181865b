//! EdDSA verification ([`super`]) on its own custom gates, beside
//! halo2-base's gates and on the Poseidon chip's advice columns.
//!
//! One verification checks `S·B8 + h·(−8·A) = R` with a joint
//! double-and-add over the 254 bits of `S` and `h` (Shamir's trick): per
//! bit pair one doubling and one addition of a point chosen from
//! `{0, B8, −8A, B8 − 8A}`. The challenge `h` itself is a Poseidon hash
//! computed in halo2-base's cells (its rows on the Poseidon chip) and copied
//! in, like `A`, `R`, `S` and the enable flag.
//!
//! Rows of one verification (10 advice columns), [`ROWS`] in all:
//!
//! | row | cells |
//! |---|---|
//! | pre | `Ax Ay Ax² Ay² 2A 4A 8A` — `A` on the curve, three doublings |
//! | header | `s=0 h=0 e1=1 l1=0 e2=1 l2=0 −8A C` — `C = B8 − 8A` |
//! | step `i` (a) | `X Y b1 b2 DX DY PX PY U V` — `D = 2·(X, Y)`, `P` chosen by `b1 b2`, `U = DX·PY`, `V = DY·PX` |
//! | step `i` (b) | `s h e1 l1 e2 l2 −8A C` — running scalars and comparators, the table copied down |
//! | final | `X Y Rx Ry en inv` — `en·(X, Y − R) = 0`, `en·(8A.x·inv − 1) = 0` |
//!
//! The next step's `(X, Y) = D + P` (complete addition:
//! `X'·(1 + d·U·V) = U + V`, `Y'·(1 − d·U·V) = DY·PY − a·DX·PX`). The
//! doubling uses the curve equation (`1 ± d·x²y²` rewritten), valid because
//! every accumulator is a point of the curve.
//!
//! The running scalars `s' = 2s + b1`, `h' = 2h + b2` end equal to `S` and
//! `h` (copy constraints); the comparators compare them bit by bit, most
//! significant first, with the fixed bits of `l` and `p` (`e`: equal so far,
//! `l`: already below) and must end below: `S < l` and `h < p`, so both
//! decompositions are canonical. Every constraint has degree at most 4,
//! selector included, like the Poseidon chip's.

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
use num_bigint::BigUint;

use crate::babyjub::{self, A, D};

/// Bits of each scalar (`p < 2^254`).
pub const BITS: usize = 254;
/// Advice columns the chip uses.
pub const COLUMNS: usize = 10;
/// Rows of one verification.
pub const ROWS: usize = 2 + 2 * BITS + 1;

/// One verification of the batch circuit: halo2-base cells.
#[derive(Debug, Clone)]
pub struct SigJob {
    /// The public key `A` (x, y).
    pub key: [AssignedValue<Fr>; 2],
    /// The signature's `R` (x, y).
    pub r: [AssignedValue<Fr>; 2],
    /// The signature's `S`.
    pub s: AssignedValue<Fr>,
    /// The challenge `h` (a Poseidon digest of halo2-base's cells).
    pub h: AssignedValue<Fr>,
    /// 1: the signature must verify; 0: the job is a placeholder.
    pub enabled: AssignedValue<Fr>,
}

/// The chip's gates; the columns are the Poseidon chip's.
#[derive(Debug, Clone)]
pub struct EddsaConfig {
    adv: [Column<Advice>; COLUMNS],
    /// Bits of `l` and of `p`, most significant first, on the step rows.
    modulus_bits: [Column<Fixed>; 2],
    q_pre: Selector,
    q_step: Selector,
    q_final: Selector,
}

fn c(v: Fr) -> Expression<Fr> {
    Expression::Constant(v)
}

fn bits_msb_first(n: &BigUint) -> Vec<bool> {
    (0..BITS as u64).rev().map(|i| n.bit(i)).collect()
}

/// `2·(x, y)` by the formula the gate checks (the curve equation
/// substituted into the denominators); zeros where they vanish off the curve.
fn double(x: Fr, y: Fr) -> (Fr, Fr) {
    let (ax2, y2) = (Fr::from(A) * x.square(), y.square());
    let dx = (x * y).double() * (ax2 + y2).invert().unwrap_or(Fr::ZERO);
    let dy = (y2 - ax2) * (Fr::from(2) - ax2 - y2).invert().unwrap_or(Fr::ZERO);
    (dx, dy)
}

/// The witness rows of one verification, and each step row's fixed bits.
/// `s` and `h` are the integers decomposed (the cells' canonical values,
/// unless a test says otherwise).
fn rows(key: (Fr, Fr), r: (Fr, Fr), s: &BigUint, h: &BigUint, en: Fr) -> (Vec<[Fr; COLUMNS]>, Vec<[Fr; 2]>) {
    let (ax, ay) = key;
    let a2 = double(ax, ay);
    let a4 = double(a2.0, a2.1);
    let a8 = double(a4.0, a4.1);
    let b8 = babyjub::base8();
    let b = (b8.x(), b8.y());
    let na = (-a8.0, a8.1);
    let cc = babyjub::add_coords(b, na);
    let mut out = vec![[ax, ay, ax.square(), ay.square(), a2.0, a2.1, a4.0, a4.1, a8.0, a8.1]];
    let table = [na.0, na.1, cc.0, cc.1];
    let row_b = |sv: Fr, hv: Fr, cmp: [Fr; 4]| -> [Fr; COLUMNS] {
        [sv, hv, cmp[0], cmp[1], cmp[2], cmp[3], table[0], table[1], table[2], table[3]]
    };
    out.push(row_b(Fr::ZERO, Fr::ZERO, [Fr::ONE, Fr::ZERO, Fr::ONE, Fr::ZERO]));
    let (sb, hb) = (bits_msb_first(s), bits_msb_first(h));
    let (lb, pbits) = (bits_msb_first(babyjub::subgroup_order()), bits_msb_first(babyjub::field_modulus()));
    let mut fixed = vec![];
    let (mut acc, mut sv, mut hv) = ((Fr::ZERO, Fr::ONE), Fr::ZERO, Fr::ZERO);
    let mut cmp = [true, false, true, false];
    for i in 0..BITS {
        let (b1, b2) = (sb[i], hb[i]);
        let d = double(acc.0, acc.1);
        let p = match (b1, b2) {
            (false, false) => (Fr::ZERO, Fr::ONE),
            (true, false) => b,
            (false, true) => na,
            (true, true) => cc,
        };
        let (u, v) = (d.0 * p.1, d.1 * p.0);
        out.push([acc.0, acc.1, Fr::from(b1), Fr::from(b2), d.0, d.1, p.0, p.1, u, v]);
        fixed.push([Fr::from(lb[i]), Fr::from(pbits[i])]);
        acc = babyjub::add_coords(d, p);
        sv = sv.double() + Fr::from(b1);
        hv = hv.double() + Fr::from(b2);
        for (k, (bit, m)) in [(b1, lb[i]), (b2, pbits[i])].into_iter().enumerate() {
            let (e, l) = (cmp[2 * k], cmp[2 * k + 1]);
            cmp[2 * k] = e && bit == m;
            cmp[2 * k + 1] = l || (e && !bit && m);
        }
        out.push(row_b(sv, hv, cmp.map(Fr::from)));
    }
    let inv = a8.0.invert().unwrap_or(Fr::ZERO);
    out.push([acc.0, acc.1, r.0, r.1, en, inv, Fr::ZERO, Fr::ZERO, Fr::ZERO, Fr::ZERO]);
    (out, fixed)
}

impl EddsaConfig {
    /// Adds the chip's gates over `adv` (equality enabled) and the fixed
    /// columns `modulus_bits` (shared with other chips: only the step rows
    /// of this chip give them meaning here).
    pub fn configure(
        meta: &mut ConstraintSystem<Fr>,
        adv: [Column<Advice>; COLUMNS],
        modulus_bits: [Column<Fixed>; 2],
    ) -> Self {
        let config = EddsaConfig {
            adv,
            modulus_bits,
            q_pre: meta.selector(),
            q_step: meta.selector(),
            q_final: meta.selector(),
        };
        let (a, d) = (c(Fr::from(A)), c(Fr::from(D)));
        let b8 = babyjub::base8();
        let (bx, by) = (c(b8.x()), c(b8.y()));
        let one = || c(Fr::ONE);
        // 2·(x, y) = (dx, dy) on the curve: dx·(a·x² + y²) = 2xy, dy·(2 − a·x² − y²) = y² − a·x²
        let dbl = |x: Expression<Fr>, y: Expression<Fr>, dx: Expression<Fr>, dy: Expression<Fr>| {
            let ax2 = a.clone() * x.clone() * x.clone();
            let y2 = y.clone() * y.clone();
            [
                dx * (ax2.clone() + y2.clone()) - c(Fr::from(2)) * x * y,
                dy * (c(Fr::from(2)) - ax2.clone() - y2.clone()) - (y2 - ax2),
            ]
        };
        meta.create_gate("eddsa key and table", |m| {
            let q = m.query_selector(config.q_pre);
            let cur: Vec<Expression<Fr>> = adv.iter().map(|col| m.query_advice(*col, Rotation::cur())).collect();
            let nxt: Vec<Expression<Fr>> = adv.iter().map(|col| m.query_advice(*col, Rotation::next())).collect();
            let (x, y, xx, yy) = (cur[0].clone(), cur[1].clone(), cur[2].clone(), cur[3].clone());
            let mut out = vec![
                xx.clone() - x.clone() * x.clone(),
                yy.clone() - y.clone() * y.clone(),
                a.clone() * xx.clone() + yy.clone() - one() - d.clone() * xx * yy,
            ];
            // A → 2A → 4A → 8A (columns 0-1, 4-5, 6-7, 8-9)
            for (from, to) in [(0, 4), (4, 6), (6, 8)] {
                out.extend(dbl(cur[from].clone(), cur[from + 1].clone(), cur[to].clone(), cur[to + 1].clone()));
            }
            // header: scalars 0, comparators (equal, not below), −8A and C = B8 − 8A
            out.extend([nxt[0].clone(), nxt[1].clone(), nxt[2].clone() - one(), nxt[3].clone()]);
            out.extend([nxt[4].clone() - one(), nxt[5].clone()]);
            let (nax, nay, cx, cy) = (nxt[6].clone(), nxt[7].clone(), nxt[8].clone(), nxt[9].clone());
            out.push(nax.clone() + cur[8].clone());
            out.push(nay.clone() - cur[9].clone());
            let t = d.clone() * bx.clone() * by.clone() * nax.clone() * nay.clone();
            out.push(cx * (one() + t.clone()) - (bx.clone() * nay.clone() + by.clone() * nax.clone()));
            out.push(cy * (one() - t) - (by.clone() * nay - a.clone() * bx.clone() * nax));
            // the accumulator starts at the identity
            out.push(m.query_advice(adv[0], Rotation(2)));
            out.push(m.query_advice(adv[1], Rotation(2)) - one());
            out.into_iter().map(|e| q.clone() * e).collect::<Vec<_>>()
        });
        meta.create_gate("eddsa double and add", |m| {
            let q = m.query_selector(config.q_step);
            let cur: Vec<Expression<Fr>> = adv.iter().map(|col| m.query_advice(*col, Rotation::cur())).collect();
            let prev: Vec<Expression<Fr>> = adv.iter().map(|col| m.query_advice(*col, Rotation::prev())).collect();
            let own: Vec<Expression<Fr>> = adv.iter().map(|col| m.query_advice(*col, Rotation::next())).collect();
            let (x2, y2) = (m.query_advice(adv[0], Rotation(2)), m.query_advice(adv[1], Rotation(2)));
            let mb = [m.query_fixed(modulus_bits[0], Rotation::cur()), m.query_fixed(modulus_bits[1], Rotation::cur())];
            let (x, y, b1, b2) = (cur[0].clone(), cur[1].clone(), cur[2].clone(), cur[3].clone());
            let (dx, dy, px, py, u, v) =
                (cur[4].clone(), cur[5].clone(), cur[6].clone(), cur[7].clone(), cur[8].clone(), cur[9].clone());
            let (nax, nay, cx, cy) = (prev[6].clone(), prev[7].clone(), prev[8].clone(), prev[9].clone());
            let (n1, n2) = (one() - b1.clone(), one() - b2.clone());
            let mut out = vec![b1.clone() * n1.clone(), b2.clone() * n2.clone()];
            out.extend(dbl(x, y, dx.clone(), dy.clone()));
            out.push(
                px.clone()
                    - (b1.clone() * n2.clone() * bx.clone()
                        + n1.clone() * b2.clone() * nax.clone()
                        + b1.clone() * b2.clone() * cx.clone()),
            );
            out.push(
                py.clone()
                    - (n1.clone() * n2.clone()
                        + b1.clone() * n2 * by.clone()
                        + n1.clone() * b2.clone() * nay.clone()
                        + b1.clone() * b2.clone() * cy.clone()),
            );
            out.push(u.clone() - dx.clone() * py.clone());
            out.push(v.clone() - dy.clone() * px.clone());
            let t = d.clone() * u.clone() * v.clone();
            out.push(x2 * (one() + t.clone()) - (u + v));
            out.push(y2 * (one() - t) - (dy * py - a.clone() * dx * px));
            // running scalars and comparators (b1 against l, b2 against p)
            let two = c(Fr::from(2));
            out.push(own[0].clone() - two.clone() * prev[0].clone() - b1.clone());
            out.push(own[1].clone() - two.clone() * prev[1].clone() - b2.clone());
            for (k, (bit, mk)) in [(b1, mb[0].clone()), (b2, mb[1].clone())].into_iter().enumerate() {
                let (e, l) = (prev[2 + 2 * k].clone(), prev[3 + 2 * k].clone());
                let (e2, l2) = (own[2 + 2 * k].clone(), own[3 + 2 * k].clone());
                let differ = bit.clone() + mk.clone() - two.clone() * bit.clone() * mk.clone();
                out.push(e2 - e.clone() * (one() - differ));
                out.push(l2 - l - e * (one() - bit) * mk);
            }
            for j in 6..10 {
                out.push(own[j].clone() - prev[j].clone());
            }
            out.into_iter().map(|e| q.clone() * e).collect::<Vec<_>>()
        });
        meta.create_gate("eddsa result", |m| {
            let q = m.query_selector(config.q_final);
            let cur: Vec<Expression<Fr>> = adv.iter().map(|col| m.query_advice(*col, Rotation::cur())).collect();
            let prev: Vec<Expression<Fr>> = adv.iter().map(|col| m.query_advice(*col, Rotation::prev())).collect();
            let en = cur[4].clone();
            [
                ("enabled is a bit", en.clone() * (one() - en.clone())),
                ("R.x", en.clone() * (cur[0].clone() - cur[2].clone())),
                ("R.y", en.clone() * (cur[1].clone() - cur[3].clone())),
                // 8A is not the identity: its x (−(−8A).x) has an inverse
                ("8A is not the identity", en * (prev[6].clone() * cur[5].clone() + one())),
                ("S < l", prev[3].clone() - one()),
                ("h < p", prev[5].clone() - one()),
            ]
            .into_iter()
            .map(|(name, e)| (name, q.clone() * e))
            .collect::<Vec<_>>()
        });
        config
    }

    /// Lays out `jobs` from row `offset`; `cell_of` maps a halo2-base cell
    /// to its physical cell (`None` when only witnesses are generated).
    /// Returns the first row after them.
    pub fn assign(
        &self,
        region: &mut Region<'_, Fr>,
        offset: usize,
        jobs: &[SigJob],
        cell_of: &dyn Fn(&AssignedValue<Fr>) -> Option<Cell>,
    ) -> usize {
        let mut at = offset;
        for job in jobs {
            let val = |v: &AssignedValue<Fr>| *v.value();
            let h = babyjub::int_of(&val(&job.h));
            #[cfg(test)]
            let h = tamper::challenge(h);
            let (values, fixed) = rows(
                (val(&job.key[0]), val(&job.key[1])),
                (val(&job.r[0]), val(&job.r[1])),
                &babyjub::int_of(&val(&job.s)),
                &h,
                val(&job.enabled),
            );
            #[cfg(test)]
            let values = tamper::apply(values);
            let mut cells = Vec::with_capacity(values.len());
            for (i, row) in values.iter().enumerate() {
                let r = at + i;
                let assigned: Vec<Cell> = row
                    .iter()
                    .zip(&self.adv)
                    .map(|(v, col)| region.assign_advice(*col, r, Value::known(*v)).cell())
                    .collect();
                cells.push(assigned);
                let step = (2..ROWS - 1).contains(&i) && i.is_multiple_of(2);
                let sel = match i {
                    0 => Some(self.q_pre),
                    _ if step => Some(self.q_step),
                    _ if i == ROWS - 1 => Some(self.q_final),
                    _ => None,
                };
                if let Some(q) = sel {
                    q.enable(region, r).expect("selector rows are inside the region");
                }
                if step {
                    for (col, bit) in self.modulus_bits.iter().zip(fixed[(i - 2) / 2]) {
                        region.assign_fixed(*col, r, bit);
                    }
                }
            }
            let last = &cells[ROWS - 1];
            let scalars = &cells[ROWS - 2];
            for (cell, v) in [
                (cells[0][0], &job.key[0]),
                (cells[0][1], &job.key[1]),
                (scalars[0], &job.s),
                (scalars[1], &job.h),
                (last[2], &job.r[0]),
                (last[3], &job.r[1]),
                (last[4], &job.enabled),
            ] {
                if let Some(other) = cell_of(v) {
                    region.constrain_equal(cell, other);
                }
            }
            at += ROWS;
        }
        at
    }
}

/// Witness tampering for the negative tests: applied to every job's rows.
#[cfg(test)]
pub(crate) mod tamper {
    use std::cell::Cell;

    use num_bigint::BigUint;

    use super::{Field, Fr, COLUMNS};

    /// What to break in every job.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Tamper {
        /// Add one to the cell at (row, column).
        Cell(usize, usize),
        /// Decompose `h + p` instead of the challenge `h` (the same field
        /// element, another scalar).
        ChallengePlusModulus,
    }

    thread_local! {
        /// The tampering of this thread's next syntheses.
        pub(crate) static TAMPER: Cell<Option<Tamper>> = const { Cell::new(None) };
    }

    pub(super) fn challenge(h: BigUint) -> BigUint {
        match TAMPER.with(Cell::get) {
            Some(Tamper::ChallengePlusModulus) => h + crate::babyjub::field_modulus(),
            _ => h,
        }
    }

    pub(super) fn apply(mut rows: Vec<[Fr; COLUMNS]>) -> Vec<[Fr; COLUMNS]> {
        if let Some(Tamper::Cell(r, c)) = TAMPER.with(Cell::get) {
            rows[r][c] += Fr::ONE;
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use halo2_base::{
        gates::circuit::{builder::BaseCircuitBuilder, BaseCircuitParams, BaseConfig},
        halo2_proofs::{
            circuit::{Layouter, SimpleFloorPlanner},
            dev::MockProver,
            plonk::{Circuit, Error as PlonkError},
        },
    };

    use super::*;
    use crate::{
        babyjub::Point,
        eddsa::{self, SecretKey, Signature},
    };

    #[test]
    fn rows_compute_the_verification_equation() {
        let k = SecretKey::from_bytes([1; 32]);
        let m = Fr::from(77);
        let sig = k.sign(m);
        let a = k.public().0;
        let h = eddsa::challenge(&sig.r, &a, m);
        let (rows, fixed) = rows((a.x(), a.y()), (sig.r.x(), sig.r.y()), &sig.s, &babyjub::int_of(&h), Fr::ONE);
        assert_eq!((rows.len(), fixed.len()), (ROWS, BITS));
        let last = rows[ROWS - 1];
        assert_eq!((last[0], last[1]), (sig.r.x(), sig.r.y()), "S·B8 − h·8A = R");
        let scalars = rows[ROWS - 2];
        assert_eq!((scalars[0], scalars[1]), (babyjub::fr_of(&sig.s), h));
        assert_eq!([scalars[3], scalars[5]], [Fr::ONE; 2], "S < l and h < p");
    }

    /// halo2-base's cells for the jobs' values, and the chip on columns of
    /// its own, tied by copy constraints as in the batch circuit.
    #[derive(Clone)]
    struct SigCircuit {
        builder: BaseCircuitBuilder<Fr>,
        jobs: Vec<SigJob>,
    }

    /// One verification's values: key, R, S, h, enabled.
    type Values = ((Fr, Fr), (Fr, Fr), Fr, Fr, Fr);

    const K: u32 = 12;

    impl SigCircuit {
        fn new(values: &[Values]) -> Self {
            let mut builder = BaseCircuitBuilder::new(false).use_k(K as usize).use_instance_columns(1);
            let ctx = builder.main(0);
            let jobs = values
                .iter()
                .map(|&(key, r, s, h, en)| {
                    let mut l = |v: Fr| ctx.load_witness(v);
                    SigJob { key: [l(key.0), l(key.1)], r: [l(r.0), l(r.1)], s: l(s), h: l(h), enabled: l(en) }
                })
                .collect();
            builder.calculate_params(Some(10));
            SigCircuit { builder, jobs }
        }
    }

    impl Circuit<Fr> for SigCircuit {
        type Config = (BaseConfig<Fr>, EddsaConfig);
        type FloorPlanner = SimpleFloorPlanner;
        type Params = BaseCircuitParams;

        fn params(&self) -> BaseCircuitParams {
            self.builder.config_params.clone()
        }

        fn without_witnesses(&self) -> Self {
            self.clone()
        }

        fn configure_with_params(meta: &mut ConstraintSystem<Fr>, params: BaseCircuitParams) -> Self::Config {
            let base = BaseConfig::configure(meta, params);
            let adv = std::array::from_fn(|_| meta.advice_column());
            for col in adv {
                meta.enable_equality(col);
            }
            let fixed = [meta.fixed_column(), meta.fixed_column()];
            (base, EddsaConfig::configure(meta, adv, fixed))
        }

        fn configure(_: &mut ConstraintSystem<Fr>) -> Self::Config {
            unreachable!("configured with its parameters")
        }

        fn synthesize(&self, (base, chip): Self::Config, mut layouter: impl Layouter<Fr>) -> Result<(), PlonkError> {
            self.builder.synthesize(base, layouter.namespace(|| "halo2-base"))?;
            let copies = self.builder.core().copy_manager.lock().map_err(|_| PlonkError::Synthesis)?;
            let cell_of = |v: &AssignedValue<Fr>| -> Option<Cell> {
                v.cell.and_then(|c| copies.assigned_advices.get(&c).copied())
            };
            layouter.assign_region(
                || "eddsa",
                |mut region| {
                    chip.assign(&mut region, 0, &self.jobs, &cell_of);
                    Ok(())
                },
            )
        }
    }

    fn failures(values: &[Values]) -> Vec<String> {
        let c = SigCircuit::new(values);
        match MockProver::run(K, &c, vec![vec![]]).unwrap().verify() {
            Ok(()) => vec![],
            Err(fs) => fs.iter().map(|f| format!("{f}")).collect(),
        }
    }

    fn values(key: &Point, sig: &Signature, h: Fr, en: bool) -> Values {
        ((key.x(), key.y()), (sig.r.x(), sig.r.y()), babyjub::fr_of(&sig.s), h, Fr::from(en))
    }

    /// A signature by key `n` over `m` and its job's values.
    fn signed(n: u8, m: u64) -> (Point, Signature, Fr) {
        let k = SecretKey::from_bytes([n; 32]);
        let sig = k.sign(Fr::from(m));
        let a = k.public().0;
        let h = eddsa::challenge(&sig.r, &a, Fr::from(m));
        (a, sig, h)
    }

    fn fails_in(fs: &[String], gate: &str) -> bool {
        fs.iter().any(|f| f.contains(gate))
    }

    #[test]
    fn valid_signatures_verify_and_placeholders_pass() {
        let (a, sig, h) = signed(1, 5);
        let (b, sig_b, h_b) = signed(2, 6);
        // a placeholder: the identity as key, any R, nothing checked
        let junk = Signature { r: babyjub::base8(), s: 0u8.into() };
        let fs = failures(&[
            values(&a, &sig, h, true),
            values(&Point::IDENTITY, &junk, Fr::from(99), false),
            values(&b, &sig_b, h_b, true),
        ]);
        assert!(fs.is_empty(), "{fs:?}");
    }

    #[test]
    fn forged_signatures_fail() {
        let (a, sig, h) = signed(1, 5);
        // a valid signature over another message: its challenge differs
        let (_, _, h_other) = signed(1, 6);
        assert!(fails_in(&failures(&[values(&a, &sig, h_other, true)]), "'R.x'"));
        // another key
        let (b, _, _) = signed(2, 5);
        assert!(fails_in(&failures(&[values(&b, &sig, h, true)]), "'R.x'"));
        // S + 1, and R moved by B8
        let mut s1 = sig.clone();
        s1.s += 1u8;
        assert!(fails_in(&failures(&[values(&a, &s1, h, true)]), "'R.x'"));
        let mut r1 = sig.clone();
        r1.r = r1.r.add(&babyjub::base8());
        assert!(fails_in(&failures(&[values(&a, &r1, h, true)]), "'R.x'"));
        // S + l satisfies the equation but is not canonical
        let mut high = sig.clone();
        high.s += babyjub::subgroup_order();
        let fs = failures(&[values(&a, &high, h, true)]);
        assert!(fails_in(&fs, "'S < l'") && !fails_in(&fs, "'R.x'"), "{fs:?}");
    }

    #[test]
    fn small_order_and_off_curve_keys_fail() {
        // A = (0, 1): S·B8 = R for any S, but 8A has no inverse x
        let s = BigUint::from(5u8);
        let sig = Signature { r: babyjub::base8().mul(&s), s };
        let fs = failures(&[values(&Point::IDENTITY, &sig, Fr::from(3), true)]);
        assert!(fails_in(&fs, "'8A is not the identity'") && !fails_in(&fs, "'R.x'"), "{fs:?}");
        // a key off the curve, even disabled
        let ((_, ay), r, s, h, _) = values(&Point::IDENTITY, &sig, Fr::from(3), false);
        let fs = failures(&[((Fr::from(2), ay), r, s, h, Fr::ZERO)]);
        assert!(fails_in(&fs, "eddsa key and table"), "{fs:?}");
    }

    #[test]
    fn tampered_rows_fail_their_gate() {
        use tamper::{Tamper, TAMPER};
        let (a, sig, h) = signed(3, 8);
        for (t, gate) in [
            (Tamper::Cell(0, 4), "eddsa key and table"),   // 2A.x
            (Tamper::Cell(1, 8), "eddsa key and table"),   // C.x
            (Tamper::Cell(2, 2), "eddsa double and add"),  // a bit made 2
            (Tamper::Cell(40, 4), "eddsa double and add"), // a doubling
            (Tamper::Cell(40, 8), "eddsa double and add"), // U
            (Tamper::Cell(41, 2), "eddsa double and add"), // a comparator
            (Tamper::Cell(61, 7), "eddsa double and add"), // the copied table
            (Tamper::Cell(ROWS - 1, 0), "eddsa result"),   // the result
        ] {
            TAMPER.with(|c| c.set(Some(t)));
            let fs = failures(&[values(&a, &sig, h, true)]);
            TAMPER.with(|c| c.set(None));
            assert!(fails_in(&fs, gate), "{t:?} must break {gate}: {fs:?}");
        }
        // h + p: the same field element as h, another scalar (a message whose
        // h + p still fits the 254 bits decomposed)
        let p = babyjub::field_modulus();
        let (a, sig, h) = (10u64..)
            .map(|m| signed(3, m))
            .find(|(_, _, h)| babyjub::int_of(h) + p < BigUint::from(1u8) << BITS)
            .expect("about a third of all challenges qualify");
        TAMPER.with(|c| c.set(Some(Tamper::ChallengePlusModulus)));
        let fs = failures(&[values(&a, &sig, h, true)]);
        TAMPER.with(|c| c.set(None));
        assert!(fails_in(&fs, "'h < p'"), "{fs:?}");
        // a scalar cell off its copy: the copy constraint to halo2-base's S fails
        TAMPER.with(|c| c.set(Some(Tamper::Cell(ROWS - 2, 0))));
        let fs = failures(&[values(&a, &sig, h, true)]);
        TAMPER.with(|c| c.set(None));
        assert!(fails_in(&fs, "Equality constraint"), "{fs:?}");
    }
}
