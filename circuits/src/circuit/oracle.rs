//! Oracle updates in the circuit: the batch's quote sets (each quote's key,
//! bounds and signature, distinct oracles, the quorum, the lower median by
//! counting) and the slot that applies an update.

use halo2_base::{
    gates::{GateInstructions, RangeInstructions},
    halo2_proofs::halo2curves::bn256::Fr,
    Context,
    QuantumCell::{Constant, Existing},
};

use super::{
    cells::Table,
    gadgets::V,
    slot::{Slots, NONCE},
};
use crate::{fixed, poseidon::Domain, state::fe, transition::Encoded};

/// The quote set of an oracle update: what the slot applying it reads.
#[derive(Clone, Copy)]
pub(super) struct QuoteSet {
    /// 1: an update's quorum is verified here.
    pub(super) enabled: V,
    pub(super) kind: V,
    pub(super) asset: V,
    pub(super) timestamp: V,
    /// Price or premium, delta, gamma, vega.
    pub(super) values: [V; 4],
}

impl Slots<'_> {
    /// The batch's quote sets, one per oracle update of the shape, in the
    /// order of the updates: per set, per quote position, the oracle's key
    /// picked from the table (a slot with a key), its values bounded, its
    /// signature of [`crate::transition::oracle_message`] verified; each
    /// oracle quotes at most once, at least the quorum quote, and each of
    /// the update's values is the lower median of the quoted ones: fewer
    /// than half of the quotes below it, at most half above.
    pub(super) fn quote_sets(&self, ctx: &mut Context<Fr>, t: &Table) -> Vec<QuoteSet> {
        let from = ctx.advice.len();
        let g = self.chips.gate();
        let n = self.w.shape.oracles;
        let updates: Vec<&Encoded> =
            self.w.steps.iter().map(|s| &s.transition).filter(|e| e.kind.is_oracle()).collect();
        let bounds = [fixed::PRICE, fixed::DELTA, fixed::GAMMA, fixed::VEGA];
        let mut sets = vec![];
        for u in 0..self.w.shape.oracle_updates {
            let e = updates.get(u).copied();
            let mut l = |x: i128| ctx.load_witness(fe(x));
            let enabled = l(i128::from(e.is_some()));
            let kind = l(e.map_or(0, |e| e.kind as i128));
            let asset = l(e.map_or(0, |e| e.asset as i128));
            let timestamp = l(e.map_or(0, |e| e.timestamp as i128));
            let values = e.map_or([0; 4], |e| e.values()).map(&mut l);
            g.assert_bit(ctx, enabled);
            let mut used = vec![vec![]; n];
            let mut count = vec![];
            let mut below = vec![vec![]; 4];
            let mut above = vec![vec![]; 4];
            for p in 0..n {
                let q = e.and_then(|e| e.quotes.get(p));
                let on = ctx.load_witness(Fr::from(u64::from(q.is_some())));
                g.assert_bit(ctx, on);
                let stray = g.mul_not(ctx, enabled, on);
                self.chips.assert_zero(ctx, stray);
                count.push(Existing(on));
                let idx = ctx.load_witness(Fr::from(q.map_or(0, |q| u64::from(q.oracle))));
                let ind = g.idx_to_indicator(ctx, idx, n);
                let hit = g.sum(ctx, ind.iter().copied());
                self.chips.assert_one(ctx, hit);
                for i in 0..n {
                    used[i].push(g.mul(ctx, on, ind[i]));
                }
                let key: [V; 2] = std::array::from_fn(|c| {
                    g.select_by_indicator(ctx, t.okeys.iter().map(|k| k[c]), ind.iter().copied())
                });
                let keyless = g.is_zero(ctx, key[0]);
                let stray = g.mul(ctx, keyless, on);
                self.chips.assert_zero(ctx, stray);
                let quoted = q.map_or([0; 4], |q| q.values).map(|v| ctx.load_witness(fe(v)));
                for c in 0..4 {
                    self.chips.bound(ctx, quoted[c], bounds[c]);
                    let bits = bounds[c].bits + 1;
                    let lo = g.sub(ctx, quoted[c], values[c]);
                    let lo = self.chips.is_neg(ctx, lo, bits);
                    below[c].push(g.mul(ctx, lo, on));
                    let hi = g.sub(ctx, values[c], quoted[c]);
                    let hi = self.chips.is_neg(ctx, hi, bits);
                    above[c].push(g.mul(ctx, hi, on));
                }
                let m =
                    self.chips.hash(ctx, Domain::Oracle, &[&[self.tag, kind, asset, timestamp][..], &quoted].concat());
                self.verify_signature(ctx, q.and_then(|q| q.signature.as_ref()), key, m, on);
            }
            for quotes in used {
                let times = g.sum(ctx, quotes);
                g.assert_bit(ctx, times);
            }
            let count = g.sum(ctx, count);
            let r = &self.chips.range;
            let short = g.sub(ctx, count, t.quorum);
            let short = g.mul(ctx, short, enabled);
            r.range_check(ctx, short, 8);
            for c in 0..4 {
                // count - 1 - 2 * below >= 0 and count - 2 * above >= 0
                let lt = g.sum(ctx, below[c].iter().copied());
                let gt = g.sum(ctx, above[c].iter().copied());
                let room = g.sub(ctx, count, Constant(Fr::one()));
                let room = g.sub_mul(ctx, room, lt, Constant(Fr::from(2)));
                let room = g.mul(ctx, room, enabled);
                r.range_check(ctx, room, 8);
                let room = g.sub_mul(ctx, count, gt, Constant(Fr::from(2)));
                let room = g.mul(ctx, room, enabled);
                r.range_check(ctx, room, 8);
            }
            sets.push(QuoteSet { enabled, kind, asset, timestamp, values });
        }
        self.chips.tally(ctx, "oracle quote sets", from);
        sets
    }

    /// An oracle update (`on`: price, marks) reads the next quote set, which
    /// must hold its kind, asset, timestamp and values, and its timestamp is
    /// later than the market's or series' latest.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn oracle_update(
        &self,
        ctx: &mut Context<Fr>,
        t: &Table,
        on: [V; 2],
        ind: [&[V]; 2],
        [kind, asset, timestamp]: [V; 3],
        values: [V; 4],
    ) {
        let from = ctx.advice.len();
        let g = self.chips.gate();
        let oracle = g.add(ctx, on[0], on[1]);
        let seen = self.updates.get().unwrap_or_else(|| ctx.load_zero());
        if self.sets.is_empty() {
            self.chips.assert_zero(ctx, oracle);
        } else {
            let pick = g.idx_to_indicator(ctx, seen, self.sets.len());
            let enabled = g.select_by_indicator(ctx, self.sets.iter().map(|q| q.enabled), pick.iter().copied());
            let missing = g.mul_not(ctx, enabled, oracle);
            self.chips.assert_zero(ctx, missing);
            let fields =
                [(kind, 0), (asset, 1), (timestamp, 2), (values[0], 3), (values[1], 4), (values[2], 5), (values[3], 6)];
            for (v, i) in fields {
                let set = self
                    .sets
                    .iter()
                    .map(|q| [q.kind, q.asset, q.timestamp, q.values[0], q.values[1], q.values[2], q.values[3]][i]);
                let want = g.select_by_indicator(ctx, set, pick.iter().copied());
                let gap = g.sub(ctx, v, want);
                let gap = g.mul(ctx, gap, oracle);
                self.chips.assert_zero(ctx, gap);
            }
        }
        self.updates.set(Some(g.add(ctx, seen, oracle)));
        // strictly later than the latest update of its market or series
        let last_m = g.select_by_indicator(ctx, t.otime.iter().copied(), ind[0].iter().copied());
        let mut last = g.mul(ctx, last_m, on[0]);
        if !t.stime.is_empty() {
            let last_s = g.select_by_indicator(ctx, t.stime.iter().copied(), ind[1].iter().copied());
            last = g.mul_add(ctx, last_s, on[1], last);
        }
        let gap = g.sub(ctx, timestamp, last);
        let gap = g.sub(ctx, gap, Constant(Fr::one()));
        let gap = g.mul(ctx, gap, oracle);
        self.chips.range.range_check(ctx, gap, NONCE.bits);
        self.chips.tally(ctx, "oracle updates", from);
    }
}
