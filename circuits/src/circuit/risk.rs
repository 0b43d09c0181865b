//! The margin figures of an account in the circuit ([`crate::margin`]):
//! total value, initial and maintenance requirements, the scenario risk,
//! and the predicates the slot's margin rules combine.

use ethnum::I256;
use halo2_base::{
    gates::GateInstructions,
    halo2_proofs::halo2curves::bn256::Fr,
    Context,
    QuantumCell::{Constant, Existing},
};

use super::{
    cells::{Leaf, Table},
    gadgets::{fe_i256, V},
    slot::Slots,
};
use crate::margin::{self, RISK_BITS};

/// Bits for the sign check of a slot's `new * (set - new)`.
const SLOT_PRODUCT_BITS: usize = 100;

/// Per-table scenario moves shared by every account evaluated against it.
pub(super) struct Moves {
    /// `2e24 * mark_m * shock_s`, per scenario then market.
    pub(super) perp: Vec<Vec<V>>,
    /// Per-unit option loss coefficient, per scenario then series.
    pub(super) opt: Vec<Vec<V>>,
}

pub(super) struct RiskCells {
    pub(super) tv_raw: V,
    pub(super) tv: V,
    pub(super) tri: V,
    pub(super) trm: V,
    pub(super) r: V,
}

impl Slots<'_> {
    pub(super) fn moves(&self, ctx: &mut Context<Fr>, t: &Table) -> Moves {
        let g = self.chips.gate();
        let l18 = Constant(fe_i256(margin::lift_1e18()));
        let ld = Constant(fe_i256(margin::lift_delta()));
        let und_mark: Vec<V> = self
            .und_ind
            .iter()
            .map(|ind| g.select_by_indicator(ctx, t.mark.iter().copied(), ind.iter().copied()))
            .collect();
        let mut perp = vec![];
        let mut opt = vec![];
        for s in 0..t.pshock.len() {
            perp.push(
                t.mark
                    .iter()
                    .map(|m| {
                        let ds = g.mul(ctx, *m, t.pshock[s]);
                        g.mul(ctx, ds, l18)
                    })
                    .collect(),
            );
            let vol = g.mul(ctx, t.vshock[s], l18);
            opt.push(
                (0..t.prem.len())
                    .map(|j| {
                        let ds = g.mul(ctx, und_mark[j], t.pshock[s]);
                        let d = g.mul(ctx, t.delta[j], ld);
                        let dd = g.mul(ctx, d, ds);
                        let gs = g.mul(ctx, t.gamma[j], ds);
                        let gds2 = g.mul_add(ctx, gs, ds, dd);
                        g.mul_add(ctx, t.vega[j], vol, gds2)
                    })
                    .collect(),
            );
        }
        Moves { perp, opt }
    }

    pub(super) fn risk(
        &self,
        ctx: &mut Context<Fr>,
        leaf: &Leaf,
        neg: &[V],
        t: &Table,
        mv: &Moves,
        r_hint: I256,
    ) -> RiskCells {
        let g = self.chips.gate();
        let mut tv_terms = vec![Existing(leaf.coll)];
        let mut tri_terms = vec![];
        let mut trm_terms = vec![];
        for m in 0..leaf.sizes.len() {
            let p = g.mul(ctx, leaf.sizes[m], t.mark[m]);
            tv_terms.push(Existing(p));
            let neg_p = g.neg(ctx, p);
            let notional = g.select(ctx, neg_p, p, neg[m]);
            tri_terms.push(g.mul(ctx, notional, t.imf[m]));
            trm_terms.push(g.mul(ctx, notional, t.mmf[m]));
        }
        for j in 0..leaf.opts.len() {
            tv_terms.push(Existing(g.mul(ctx, leaf.opts[j], t.prem[j])));
        }
        let tv_raw = g.sum(ctx, tv_terms);
        let tv = g.mul(ctx, tv_raw, Constant(fe_i256(margin::lift_tv())));
        let l18 = Constant(fe_i256(margin::lift_1e18()));
        let tri = g.sum(ctx, tri_terms);
        let tri = g.mul(ctx, tri, l18);
        let trm = g.sum(ctx, trm_terms);
        let trm = g.mul(ctx, trm, l18);
        let r = ctx.load_witness(fe_i256(r_hint));
        // r >= 0, r >= every loss, and r is 0 or one of them
        let r_neg = self.chips.is_neg(ctx, r, RISK_BITS);
        self.chips.assert_zero(ctx, r_neg);
        let mut prod = r;
        for s in 0..mv.perp.len() {
            let mut gain = g.inner_product(ctx, leaf.sizes.iter().copied(), mv.perp[s].iter().copied().map(Existing));
            if !leaf.opts.is_empty() {
                let o = g.inner_product(ctx, leaf.opts.iter().copied(), mv.opt[s].iter().copied().map(Existing));
                gain = g.add(ctx, gain, o);
            }
            // loss = -gain; r - loss = r + gain
            let diff = g.add(ctx, r, gain);
            let below = self.chips.is_neg(ctx, diff, RISK_BITS);
            self.chips.assert_zero(ctx, below);
            prod = g.mul(ctx, prod, diff);
        }
        self.chips.assert_zero(ctx, prod);
        RiskCells { tv_raw, tv, tri, trm, r }
    }

    /// No slot grows or flips: `new * (set - new) >= 0` for every slot.
    pub(super) fn shrinks(&self, ctx: &mut Context<Fr>, set: &Leaf, new: &Leaf) -> V {
        let g = self.chips.gate();
        let mut ok = ctx.load_constant(Fr::one());
        let pairs: Vec<(V, V)> =
            set.sizes.iter().zip(&new.sizes).chain(set.opts.iter().zip(&new.opts)).map(|(a, b)| (*a, *b)).collect();
        for (before, after) in pairs {
            let diff = g.sub(ctx, before, after);
            let prod = g.mul(ctx, after, diff);
            let neg = self.chips.is_neg(ctx, prod, SLOT_PRODUCT_BITS);
            ok = g.mul_not(ctx, neg, ok);
        }
        ok
    }

    pub(super) fn well_margined(&self, ctx: &mut Context<Fr>, r: &RiskCells) -> V {
        let g = self.chips.gate();
        let need = g.add(ctx, r.tri, r.r);
        let slack = g.sub(ctx, r.tv, need);
        let neg = self.chips.is_neg(ctx, slack, RISK_BITS);
        g.not(ctx, neg)
    }

    pub(super) fn requirement(&self, ctx: &mut Context<Fr>, r: &RiskCells) -> (V, V) {
        let g = self.chips.gate();
        let req = g.add(ctx, r.trm, r.r);
        let excess = g.sub(ctx, r.tv, req);
        (req, excess)
    }

    pub(super) fn liquidatable(&self, ctx: &mut Context<Fr>, r: &RiskCells) -> V {
        let (_, excess) = self.requirement(ctx, r);
        self.chips.is_neg(ctx, excess, RISK_BITS)
    }

    pub(super) fn risk_reducing(&self, ctx: &mut Context<Fr>, shrink: V, before: &RiskCells, after: &RiskCells) -> V {
        let g = self.chips.gate();
        let (req_b, exc_b) = self.requirement(ctx, before);
        let (req_a, exc_a) = self.requirement(ctx, after);
        let d_req = g.sub(ctx, req_a, req_b);
        let lower = self.chips.is_neg(ctx, d_req, RISK_BITS);
        let d_exc = g.sub(ctx, exc_a, exc_b);
        let worse = self.chips.is_neg(ctx, d_exc, RISK_BITS);
        let ok = g.mul(ctx, shrink, lower);
        g.mul_not(ctx, worse, ok)
    }
}
