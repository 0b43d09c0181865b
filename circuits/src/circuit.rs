//! The batch circuit (halo2-base), DESIGN.md §3.
//!
//! One slot per transition of the shape's capacity; each slot is the same
//! fixed sequence of constraints whatever the transition, selected by one-hot
//! type flags, so a shape has exactly one proving key:
//!
//! 1. parameters loaded and range-checked, the commitment chain extended
//!    (skipped for padding);
//! 2. account `a`: old leaf opened against the current accounts root, funding
//!    settled (payments are constrained hints), the new leaf computed, its
//!    values range-checked, the new root computed on the same path;
//! 3. account `b` likewise against the intermediate root (`b == a` for
//!    one-account transitions, both 0 and untouched for market transitions);
//! 4. the market table updated (marks, Greeks, funding index, open interest,
//!    insurance fund), with range checks;
//! 5. margin figures of `a` and `b` before and after ([`crate::margin`]), and
//!    the rule of the active type asserted.
//!
//! The market table is hashed once at the start and once at the end; the
//! public inputs are the old and new state roots, the commitment, and the
//! transition and liquidation counts.

// Constraint code walks several parallel per-market/per-series vectors by index.
#![allow(clippy::needless_range_loop)]

use ethnum::I256;
use halo2_base::{
    gates::{circuit::builder::BaseCircuitBuilder, GateInstructions, RangeChip, RangeInstructions},
    halo2_proofs::{
        arithmetic::Field,
        halo2curves::{bn256::Fr, ff::PrimeField},
    },
    AssignedValue, Context,
    QuantumCell::{Constant, Existing},
};

use halo2_base::gates::circuit::{BaseCircuitParams, BaseConfig};
use halo2_base::halo2_proofs::{
    circuit::{Cell, Layouter, SimpleFloorPlanner},
    plonk::{Circuit, ConstraintSystem, Error as PlonkError},
};

use serde::Serialize;

use crate::{
    babyjub,
    config::Shape,
    eddsa::chip::{self as eddsa_chip, EddsaConfig, SigJob},
    eddsa::Signature,
    engine::{self, X},
    fixed::{self, Bound, Fx6},
    margin::{self, RISK_BITS},
    poseidon::{
        self,
        chip::{self, HashJob, PoseidonConfig},
        Domain,
    },
    smt::{self, ARITY},
    state::fe,
    transition::{Kind, NUM_KINDS, ORDER_BITS, ORDER_SLOTS},
    witness::{BatchWitness, OrderSlot, Step},
};

type V = AssignedValue<Fr>;

/// A signed 256-bit integer as a field element.
pub fn fe_i256(x: I256) -> Fr {
    let abs = x.unsigned_abs();
    let (hi, lo) = abs.into_words();
    let f = Fr::from_raw([lo as u64, (lo >> 64) as u64, hi as u64, (hi >> 64) as u64]);
    if x < 0 {
        -f
    } else {
        f
    }
}

/// The hashes of a batch circuit, recorded while halo2-base lays out its
/// cells and laid out afterwards on the Poseidon chip.
#[derive(Default)]
struct Hashes {
    jobs: Vec<HashJob>,
    constants: std::collections::BTreeMap<Fr, V>,
}

impl Hashes {
    fn constant(&mut self, ctx: &mut Context<Fr>, v: Fr) -> V {
        *self.constants.entry(v).or_insert_with(|| ctx.load_constant(v))
    }
}

struct Chips {
    range: RangeChip<Fr>,
    hashes: std::cell::RefCell<Hashes>,
    /// Signature verifications, laid out on the EdDSA chip.
    sigs: std::cell::RefCell<Vec<SigJob>>,
    /// halo2-base advice cells by part of a slot ([`ShapeReport::slot_parts`]).
    parts: std::cell::RefCell<std::collections::BTreeMap<&'static str, usize>>,
}

impl Chips {
    fn gate(&self) -> &impl GateInstructions<Fr> {
        self.range.gate()
    }

    /// Adds the cells assigned since `from` to `part`.
    fn tally(&self, ctx: &Context<Fr>, part: &'static str, from: usize) {
        *self.parts.borrow_mut().entry(part).or_default() += ctx.advice.len() - from;
    }

    /// Poseidon of `inputs` in `domain`: the digest is a witness here, tied to
    /// the chip's rows by copy constraints when the circuit is synthesized.
    fn hash(&self, ctx: &mut Context<Fr>, domain: Domain, inputs: &[V]) -> V {
        let mut hs = self.hashes.borrow_mut();
        let capacity = hs.constant(ctx, poseidon::capacity(domain, inputs.len()));
        let zero = hs.constant(ctx, Fr::zero());
        let values: Vec<Fr> = inputs.iter().map(|v| *v.value()).collect();
        let output = ctx.load_witness(poseidon::hash(domain, &values));
        let mut padded = inputs.to_vec();
        padded.resize(poseidon::chunks(inputs.len()) * poseidon::RATE, zero);
        hs.jobs.push(HashJob { domain, capacity, inputs: padded, output });
        output
    }

    /// Constrains `b.min <= v < b.max`: `v - b.min < 2^bits`, and
    /// `b.max - 1 - v < 2^bits` too when the bound is narrower than `2^bits`.
    fn bound(&self, ctx: &mut Context<Fr>, v: V, b: Bound) {
        let shifted = self.gate().sub(ctx, v, Constant(fe(b.min)));
        self.range.range_check(ctx, shifted, b.bits);
        if b.max - b.min < 1i128 << b.bits {
            let below = self.gate().sub(ctx, Constant(fe(b.max - 1)), v);
            self.range.range_check(ctx, below, b.bits);
        }
    }

    /// 1 if `v < 0`; also constrains `-2^bits <= v < 2^bits`.
    fn is_neg(&self, ctx: &mut Context<Fr>, v: V, bits: usize) -> V {
        let two_b = Fr::from(2).pow_vartime([bits as u64]);
        let y = self.gate().add(ctx, v, Constant(two_b));
        let repr = y.value().to_repr();
        let hi_bit = (repr.as_ref()[bits / 8] >> (bits % 8)) & 1;
        let hi = ctx.load_witness(Fr::from(hi_bit as u64));
        self.gate().assert_bit(ctx, hi);
        let lo = self.gate().sub_mul(ctx, y, hi, Constant(two_b));
        self.range.range_check(ctx, lo, bits);
        self.gate().not(ctx, hi)
    }

    fn assert_zero(&self, ctx: &mut Context<Fr>, v: V) {
        self.gate().assert_is_const(ctx, &v, &Fr::zero());
    }

    fn assert_one(&self, ctx: &mut Context<Fr>, v: V) {
        self.gate().assert_is_const(ctx, &v, &Fr::one());
    }

    /// One-hot position indicators of an account id per tree level (base-4
    /// digits of its `depth` bits).
    fn positions(&self, ctx: &mut Context<Fr>, id: V, depth: usize) -> Vec<[V; ARITY]> {
        let from = ctx.advice.len();
        let out = self.positions_inner(ctx, id, depth);
        self.tally(ctx, "merkle", from);
        out
    }

    fn positions_inner(&self, ctx: &mut Context<Fr>, id: V, depth: usize) -> Vec<[V; ARITY]> {
        let g = self.gate();
        let bits = g.num_to_bits(ctx, id, depth);
        let zero = ctx.load_zero();
        bits.chunks(2)
            .map(|b| {
                let (b0, b1) = (b[0], b.get(1).copied().unwrap_or(zero));
                let both = g.mul(ctx, b0, b1);
                let only0 = g.sub(ctx, b0, both);
                let only1 = g.sub(ctx, b1, both);
                let any = g.add(ctx, b0, b1);
                let none = g.sub(ctx, Constant(Fr::one()), any);
                let none = g.add(ctx, none, both);
                [none, only0, only1, both]
            })
            .collect()
    }

    /// Opens `leaf` against its path: per level the opened child's hash and
    /// the node's children (that hash at the indicated position, constrained),
    /// and the root.
    fn open(&self, ctx: &mut Context<Fr>, leaf: V, pos: &[[V; ARITY]], path: &[Fr]) -> (Vec<(V, [V; ARITY])>, V) {
        let from = ctx.advice.len();
        let g = self.gate();
        let mut h = leaf;
        let mut levels = vec![];
        for (ind, sib) in pos.iter().zip(path.chunks(smt::SIBLINGS)) {
            let at = ind.iter().position(|i| *i.value() == Fr::one()).unwrap_or(0);
            let kids = smt::children(*h.value(), at, sib).map(|v| ctx.load_witness(v));
            let here = g.inner_product(ctx, kids, ind.iter().map(|i| Existing(*i)));
            ctx.constrain_equal(&here, &h);
            levels.push((h, kids));
            h = self.hash(ctx, Domain::Node, &kids);
        }
        self.tally(ctx, "merkle", from);
        (levels, h)
    }

    /// The root after the opened leaf becomes `leaf`: the same siblings, the
    /// new hash at the same positions.
    fn reroot(&self, ctx: &mut Context<Fr>, leaf: V, pos: &[[V; ARITY]], levels: &[(V, [V; ARITY])]) -> V {
        let from = ctx.advice.len();
        let g = self.gate();
        let mut h = leaf;
        for (ind, (old, kids)) in pos.iter().zip(levels) {
            let delta = g.sub(ctx, h, *old);
            let new: [V; ARITY] = std::array::from_fn(|j| g.mul_add(ctx, ind[j], delta, kids[j]));
            h = self.hash(ctx, Domain::Node, &new);
        }
        self.tally(ctx, "merkle", from);
        h
    }
}

/// Account leaf cells.
#[derive(Clone)]
struct Leaf {
    coll: V,
    sizes: Vec<V>,
    fidx: Vec<V>,
    opts: Vec<V>,
    /// Key x, y (`(0, 0)`: none).
    key: [V; 2],
    nonce: V,
    /// Root of the account's orders tree.
    orders: V,
}

impl Leaf {
    fn load(ctx: &mut Context<Fr>, a: &crate::state::Account) -> Self {
        Leaf {
            coll: ctx.load_witness(fe(a.collateral.raw())),
            sizes: a.perps.iter().map(|p| ctx.load_witness(fe(p.size.raw()))).collect(),
            fidx: a.perps.iter().map(|p| ctx.load_witness(fe(p.funding_index.raw()))).collect(),
            opts: a.options.iter().map(|o| ctx.load_witness(fe(o.raw()))).collect(),
            key: crate::transition::key_fields(a.key.as_ref()).map(|v| ctx.load_witness(v)),
            nonce: ctx.load_witness(fe(a.nonce as i128)),
            orders: ctx.load_witness(a.orders_tree().root()),
        }
    }
    /// Same order as [`crate::state::Account::to_fields`].
    fn fields(&self) -> Vec<V> {
        let mut v = vec![self.coll];
        for (s, f) in self.sizes.iter().zip(&self.fidx) {
            v.push(*s);
            v.push(*f);
        }
        v.extend(&self.opts);
        v.extend(self.key);
        v.push(self.nonce);
        v.push(self.orders);
        v
    }
}

/// Market table cells.
#[derive(Clone)]
struct Table {
    mark: Vec<V>,
    fidx: Vec<V>,
    oi: Vec<V>,
    imf: Vec<V>,
    mmf: Vec<V>,
    maxf: Vec<V>,
    /// Latest oracle timestamp per market, per series.
    otime: Vec<V>,
    stime: Vec<V>,
    /// Oracle keys (x, y; `(0, 0)`: none) and the quorum.
    okeys: Vec<[V; 2]>,
    quorum: V,
    und: Vec<V>,
    prem: Vec<V>,
    delta: Vec<V>,
    gamma: Vec<V>,
    vega: Vec<V>,
    pshock: Vec<V>,
    vshock: Vec<V>,
    fund: V,
}

impl Table {
    fn load(ctx: &mut Context<Fr>, mt: &crate::state::MarketTable) -> Self {
        let mut l = |x: i128| ctx.load_witness(fe(x));
        let mut t = Table {
            mark: vec![],
            fidx: vec![],
            oi: vec![],
            imf: vec![],
            mmf: vec![],
            maxf: vec![],
            otime: vec![],
            stime: vec![],
            okeys: vec![],
            quorum: l(mt.oracles.quorum as i128),
            und: vec![],
            prem: vec![],
            delta: vec![],
            gamma: vec![],
            vega: vec![],
            pshock: vec![],
            vshock: vec![],
            fund: l(mt.insurance_fund.raw()),
        };
        for m in &mt.markets {
            t.mark.push(l(m.mark.raw()));
            t.fidx.push(l(m.funding_index.raw()));
            t.oi.push(l(m.open_interest.raw()));
            t.imf.push(l(m.initial_margin.raw()));
            t.mmf.push(l(m.maintenance_margin.raw()));
            t.maxf.push(l(m.max_funding_rate.raw()));
            t.otime.push(l(m.oracle_time as i128));
        }
        for s in &mt.series {
            t.und.push(l(s.underlying as i128));
            t.prem.push(l(s.premium.raw()));
            t.delta.push(l(s.delta.raw()));
            t.gamma.push(l(s.gamma.raw()));
            t.vega.push(l(s.vega.raw()));
            t.stime.push(l(s.oracle_time as i128));
        }
        for s in &mt.scenarios {
            t.pshock.push(l(s.price_shock.raw()));
            t.vshock.push(l(s.vol_shock.raw()));
        }
        for k in &mt.oracles.keys {
            t.okeys.push(crate::transition::key_fields(k.as_ref()).map(|v| ctx.load_witness(v)));
        }
        t
    }
    /// Same order as [`crate::state::MarketTable::to_fields`].
    fn fields(&self) -> Vec<V> {
        let mut v = vec![];
        for m in 0..self.mark.len() {
            v.extend([self.mark[m], self.fidx[m], self.oi[m], self.imf[m], self.mmf[m], self.maxf[m], self.otime[m]]);
        }
        for j in 0..self.prem.len() {
            v.extend([self.und[j], self.prem[j], self.delta[j], self.gamma[j], self.vega[j], self.stime[j]]);
        }
        for s in 0..self.pshock.len() {
            v.extend([self.pshock[s], self.vshock[s]]);
        }
        for k in &self.okeys {
            v.extend(k);
        }
        v.push(self.quorum);
        v.push(self.fund);
        v
    }
}

/// Per-table scenario moves shared by every account evaluated against it.
struct Moves {
    /// `2e24 * mark_m * shock_s`, per scenario then market.
    perp: Vec<Vec<V>>,
    /// Per-unit option loss coefficient, per scenario then series.
    opt: Vec<Vec<V>>,
}

struct RiskCells {
    tv_raw: V,
    tv: V,
    tri: V,
    trm: V,
    r: V,
}

struct Slots<'a> {
    chips: Chips,
    w: &'a BatchWitness,
    /// The chain tag (public), signed in every authorization.
    tag: V,
    /// The batch's seq (public): orders expire after a seq.
    seq: V,
    /// One-hot indicator of each series' underlying market (fixed per batch).
    und_ind: Vec<Vec<V>>,
    /// The batch's oracle quote sets ([`Slots::quote_sets`]).
    sets: Vec<QuoteSet>,
    /// Oracle updates applied so far: the next one's quote set.
    updates: std::cell::Cell<Option<V>>,
}

/// The quote set of an oracle update: what the slot applying it reads.
#[derive(Clone, Copy)]
struct QuoteSet {
    /// 1: an update's quorum is verified here.
    enabled: V,
    kind: V,
    asset: V,
    timestamp: V,
    /// Price or premium, delta, gamma, vega.
    values: [V; 4],
}

impl Slots<'_> {
    fn moves(&self, ctx: &mut Context<Fr>, t: &Table) -> Moves {
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

    fn risk(&self, ctx: &mut Context<Fr>, leaf: &Leaf, neg: &[V], t: &Table, mv: &Moves, r_hint: I256) -> RiskCells {
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
}

/// The per-account deltas of one step.
struct Deltas {
    coll: V,
    size: Vec<V>,
    opt: Vec<V>,
    /// Account `a`'s authorization (`None` for `b`).
    auth: Option<Auth>,
    /// The account's order.
    order: OrderCells,
}

/// An order a party fills in a step.
struct OrderCells {
    /// 1: the party fills an order.
    on: V,
    /// Size limit (signed by side), price limit, fee limit, expiry, id.
    terms: [V; 5],
    /// The party's position change.
    change: V,
    /// The fill's price.
    price: V,
    /// The fee it pays.
    fee: V,
}

/// What a step does to account `a`'s key and nonce.
struct Auth {
    /// 1: the step is authorized by the account's key at its nonce.
    signed: V,
    /// The nonce the transition carries.
    nonce: V,
    /// 1: a deposit (it may set a key where none is).
    deposit: V,
    /// 1: a set_key.
    set_key: V,
    /// The key the transition carries (`(0, 0)`: none).
    key: [V; 2],
    /// 1: the transition carries a key.
    has_key: V,
}

/// An opened and updated account.
struct Updated {
    set: Leaf,
    new: Leaf,
    root: V,
    neg_set: Vec<V>,
    neg_new: Vec<V>,
}

/// A nonce: a `u64`.
const NONCE: Bound = Bound { name: "nonce", min: 0, max: 1i128 << 64, bits: 64 };

/// Bits for sign checks of sizes and of slot products.
const SIZE_BITS: usize = 48;
const SLOT_PRODUCT_BITS: usize = 100;
const TV_RAW_BITS: usize = 128;

impl Slots<'_> {
    #[allow(clippy::too_many_arguments)]
    fn update(
        &self,
        ctx: &mut Context<Fr>,
        root: V,
        pos: &[[V; ARITY]],
        leaf_w: &crate::state::Account,
        path_w: &[Fr],
        pays_w: &[i128],
        order_w: &OrderSlot,
        touch: V,
        t: &Table,
        d: Deltas,
    ) -> Updated {
        let g = self.chips.gate();
        let leaf = Leaf::load(ctx, leaf_w);
        let h = self.chips.hash(ctx, Domain::Leaf, &leaf.fields());
        let (levels, opened) = self.chips.open(ctx, h, pos, path_w);
        ctx.constrain_equal(&opened, &root);
        // lazy funding: pay_m = (index_m - cached_m) * size_m when touched
        let mut set = leaf.clone();
        let mut paid = vec![];
        for m in 0..leaf.sizes.len() {
            let pay = ctx.load_witness(fe(pays_w[m]));
            let gap = g.sub(ctx, t.fidx[m], leaf.fidx[m]);
            let owed = g.mul(ctx, gap, leaf.sizes[m]);
            let owed = g.mul(ctx, owed, touch);
            ctx.constrain_equal(&pay, &owed);
            paid.push(Existing(pay));
            set.fidx[m] = g.select(ctx, t.fidx[m], leaf.fidx[m], touch);
        }
        let paid = g.sum(ctx, paid);
        set.coll = g.sub(ctx, leaf.coll, paid);
        let mut new = set.clone();
        if let Some(auth) = &d.auth {
            // a signed step carries the leaf's nonce and increments it
            let gap = g.sub(ctx, leaf.nonce, auth.nonce);
            let stale = g.mul(ctx, gap, auth.signed);
            self.chips.assert_zero(ctx, stale);
            new.nonce = g.add(ctx, leaf.nonce, auth.signed);
            // a deposit sets a key only where none is; set_key replaces it
            let none = g.is_zero(ctx, leaf.key[0]);
            let sets = g.mul(ctx, auth.deposit, auth.has_key);
            let over = g.mul_not(ctx, none, sets);
            self.chips.assert_zero(ctx, over);
            let replace = g.add(ctx, sets, auth.set_key);
            new.key = std::array::from_fn(|i| g.select(ctx, auth.key[i], leaf.key[i], replace));
        }
        new.orders = self.fill_order(ctx, set.orders, &d.order, order_w);
        new.coll = g.add(ctx, set.coll, d.coll);
        self.chips.bound(ctx, new.coll, fixed::COLLATERAL);
        for (m, ds) in d.size.into_iter().enumerate() {
            new.sizes[m] = g.add(ctx, set.sizes[m], ds);
        }
        for (j, dj) in d.opt.into_iter().enumerate() {
            new.opts[j] = g.add(ctx, set.opts[j], dj);
            // range check of the new option size
            self.chips.is_neg(ctx, new.opts[j], SIZE_BITS);
        }
        let neg_set = set.sizes.iter().map(|s| self.chips.is_neg(ctx, *s, SIZE_BITS)).collect();
        let neg_new = new.sizes.iter().map(|s| self.chips.is_neg(ctx, *s, SIZE_BITS)).collect();
        let h_new = self.chips.hash(ctx, Domain::Leaf, &new.fields());
        let root = self.chips.reroot(ctx, h_new, pos, &levels);
        Updated { set, new, root, neg_set, neg_new }
    }

    /// A party's signature over the step's message for it, verified on the
    /// EdDSA chip when `signed` (the leaf's key; a placeholder job
    /// otherwise: the identity as key, which the chip's curve check accepts).
    fn verify_signature(&self, ctx: &mut Context<Fr>, sig: Option<&Signature>, key: [V; 2], m: V, signed: V) {
        let g = self.chips.gate();
        let (r, sv) = match sig {
            Some(sig) => ((sig.r.x(), sig.r.y()), babyjub::fr_of(&sig.s)),
            None => ((babyjub::base8().x(), babyjub::base8().y()), Fr::zero()),
        };
        let r = [ctx.load_witness(r.0), ctx.load_witness(r.1)];
        let sv = ctx.load_witness(sv);
        let kx = g.mul(ctx, key[0], signed);
        let ky_1 = g.sub(ctx, key[1], Constant(Fr::one()));
        let ky = g.mul_add(ctx, ky_1, signed, Constant(Fr::one()));
        let h = self.chips.hash(ctx, Domain::Signature, &[r[0], r[1], kx, ky, m]);
        self.chips.sigs.borrow_mut().push(SigJob { key: [kx, ky], r, s: sv, h, enabled: signed });
    }

    /// The batch's quote sets, one per oracle update of the shape, in the
    /// order of the updates: per set, per quote position, the oracle's key
    /// picked from the table (a slot with a key), its values bounded, its
    /// signature of [`crate::transition::oracle_message`] verified; each
    /// oracle quotes at most once, at least the quorum quote, and each of
    /// the update's values is the lower median of the quoted ones: fewer
    /// than half of the quotes below it, at most half above.
    fn quote_sets(&self, ctx: &mut Context<Fr>, t: &Table) -> Vec<QuoteSet> {
        let from = ctx.advice.len();
        let g = self.chips.gate();
        let n = self.w.shape.oracles;
        let updates: Vec<&crate::transition::Encoded> =
            self.w.steps.iter().map(|s| &s.transition).filter(|e| e.oracle_kind()).collect();
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
    fn oracle_update(
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

    /// The orders tree of an account after `o` fills (the same root when
    /// `o.on` is 0): the slot `id mod 64` opened against `root`; the order
    /// continues the slot's order of the same id or starts afresh over an
    /// earlier one; it is live at the batch's seq, on the side of the
    /// party's position change, within its price and fee limits and its
    /// size over all its fills.
    fn fill_order(&self, ctx: &mut Context<Fr>, root: V, o: &OrderCells, w: &OrderSlot) -> V {
        let from = ctx.advice.len();
        let merkle_before = self.chips.parts.borrow().get("merkle").copied().unwrap_or(0);
        let g = self.chips.gate();
        let r = &self.chips.range;
        let [size, limit, max_fee, expiry, id] = o.terms;
        let slot_w = id.value().to_repr().as_ref()[0] as u64 % ORDER_SLOTS;
        let slot = ctx.load_witness(Fr::from(slot_w));
        let high = g.sub(ctx, id, slot);
        let high = g.mul(ctx, high, Constant(Fr::from(ORDER_SLOTS).invert().unwrap()));
        r.range_check(ctx, high, 64 - ORDER_BITS);
        let pos = self.chips.positions_inner(ctx, slot, ORDER_BITS);
        let leaf = w.leaf.to_fields().map(|v| ctx.load_witness(v));
        let h = self.chips.hash(ctx, Domain::Order, &leaf);
        let (levels, opened) = self.chips.open(ctx, h, &pos, &w.path);
        ctx.constrain_equal(&opened, &root);
        let [lid, lfilled, lfees] = leaf;
        // another order in the slot must be an earlier one
        let same = g.is_equal(ctx, lid, id);
        let later = g.sub(ctx, id, lid);
        let later = g.sub(ctx, later, Constant(Fr::one()));
        let other = g.mul_not(ctx, same, o.on);
        let later = g.mul(ctx, later, other);
        r.range_check(ctx, later, 64);
        // amounts from the order's side
        let sell = self.chips.is_neg(ctx, size, SIZE_BITS);
        let neg_size = g.neg(ctx, size);
        let abs_size = g.select(ctx, neg_size, size, sell);
        let neg_change = g.neg(ctx, o.change);
        let fill = g.select(ctx, neg_change, o.change, sell);
        let filled = g.mul_add(ctx, lfilled, same, fill);
        let fees = g.mul_add(ctx, lfees, same, o.fee);
        let gap = g.sub(ctx, limit, o.price);
        let neg_gap = g.neg(ctx, gap);
        let gap = g.select(ctx, neg_gap, gap, sell);
        let fill_1 = g.sub(ctx, fill, Constant(Fr::one()));
        let left = g.sub(ctx, abs_size, filled);
        let fee_left = g.sub(ctx, max_fee, fees);
        let life = g.sub(ctx, expiry, self.seq);
        for (v, bits) in
            [(fill_1, SIZE_BITS), (left, SIZE_BITS + 1), (gap, fixed::PRICE.bits), (fee_left, 64), (life, 64)]
        {
            let v = g.mul(ctx, v, o.on);
            r.range_check(ctx, v, bits);
        }
        let new: [V; 3] = [(id, lid), (filled, lfilled), (fees, lfees)].map(|(n, l)| g.select(ctx, n, l, o.on));
        let h = self.chips.hash(ctx, Domain::Order, &new);
        let root = self.chips.reroot(ctx, h, &pos, &levels);
        let merkle = self.chips.parts.borrow()["merkle"] - merkle_before;
        *self.chips.parts.borrow_mut().entry("orders").or_default() += ctx.advice.len() - from - merkle;
        root
    }

    /// No slot grows or flips: `new * (set - new) >= 0` for every slot.
    fn shrinks(&self, ctx: &mut Context<Fr>, set: &Leaf, new: &Leaf) -> V {
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

    fn well_margined(&self, ctx: &mut Context<Fr>, r: &RiskCells) -> V {
        let g = self.chips.gate();
        let need = g.add(ctx, r.tri, r.r);
        let slack = g.sub(ctx, r.tv, need);
        let neg = self.chips.is_neg(ctx, slack, RISK_BITS);
        g.not(ctx, neg)
    }

    fn requirement(&self, ctx: &mut Context<Fr>, r: &RiskCells) -> (V, V) {
        let g = self.chips.gate();
        let req = g.add(ctx, r.trm, r.r);
        let excess = g.sub(ctx, r.tv, req);
        (req, excess)
    }

    fn liquidatable(&self, ctx: &mut Context<Fr>, r: &RiskCells) -> V {
        let (_, excess) = self.requirement(ctx, r);
        self.chips.is_neg(ctx, excess, RISK_BITS)
    }

    fn risk_reducing(&self, ctx: &mut Context<Fr>, shrink: V, before: &RiskCells, after: &RiskCells) -> V {
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

    /// One slot. Returns the new accounts root, table and commitment, and the
    /// real and liquidation flags.
    fn step(&self, ctx: &mut Context<Fr>, s: &Step, acc_root: V, t: &Table, commit: V) -> (V, Table, V, V, V) {
        let g = self.chips.gate();
        let shape = &self.w.shape;
        let e = &s.transition;
        let from = ctx.advice.len();
        let f: Vec<V> = (0..NUM_KINDS).map(|i| ctx.load_witness(Fr::from(u64::from(e.kind as usize == i)))).collect();
        one_hot(&self.chips, ctx, &f);
        let fl = |k: Kind| f[k as usize];
        let kind = g.inner_product(ctx, f.iter().copied(), (0..NUM_KINDS).map(|i| Constant(Fr::from(i as u64))));
        let mut l = |x: i128| ctx.load_witness(fe(x));
        let (a, b, asset, x, price) = (l(e.a as i128), l(e.b as i128), l(e.asset as i128), l(e.x), l(e.price));
        let (fee_a, fee_b, delta, gamma, vega) = (l(e.fee_a), l(e.fee_b), l(e.delta), l(e.gamma), l(e.vega));
        let nonce = l(e.nonce as i128);
        let timestamp = l(e.timestamp as i128);
        let orders = e.orders.map(|o| [l(o.size), l(o.price), l(o.max_fee), l(o.expiry as i128), l(o.id as i128)]);
        let key = e.key_fields().map(|v| ctx.load_witness(v));
        self.chips.bound(ctx, nonce, NONCE);
        self.chips.bound(ctx, timestamp, NONCE);
        for [_, limit, max_fee, expiry, id] in orders {
            // (sizes are bounded where their sign is taken)
            self.chips.bound(ctx, limit, fixed::PRICE);
            self.chips.bound(ctx, max_fee, fixed::AMOUNT);
            self.chips.bound(ctx, expiry, NONCE);
            self.chips.bound(ctx, id, NONCE);
        }
        self.chips.bound(ctx, x, X);
        self.chips.bound(ctx, price, fixed::PRICE);
        self.chips.bound(ctx, fee_a, fixed::AMOUNT);
        self.chips.bound(ctx, fee_b, fixed::AMOUNT);
        self.chips.bound(ctx, delta, fixed::DELTA);
        self.chips.bound(ctx, gamma, fixed::GAMMA);
        self.chips.bound(ctx, vega, fixed::VEGA);

        // commitment chain over real transitions
        let h = self.chips.hash(
            ctx,
            Domain::Commit,
            &[
                &[commit, kind, a, b, asset, x, price, fee_a, fee_b, delta, gamma, vega, key[0], key[1], nonce][..],
                &orders[0],
                &orders[1],
                &[timestamp],
            ]
            .concat(),
        );
        let commit = g.select(ctx, commit, h, fl(Kind::Noop));

        let sum = |ctx: &mut Context<Fr>, ks: &[Kind]| g.sum(ctx, ks.iter().map(|k| fl(*k)));
        let touch = sum(
            ctx,
            &[
                Kind::Deposit,
                Kind::Withdraw,
                Kind::Trade,
                Kind::OptionTrade,
                Kind::Liquidate,
                Kind::Deleverage,
                Kind::SetKey,
            ],
        );
        let perp_trade = sum(ctx, &[Kind::Trade, Kind::Liquidate, Kind::Deleverage]);
        let trade_like = g.add(ctx, perp_trade, fl(Kind::OptionTrade));
        let perp_asset =
            sum(ctx, &[Kind::Trade, Kind::Liquidate, Kind::Deleverage, Kind::OraclePrice, Kind::FundingTick]);
        let series_asset = sum(ctx, &[Kind::OptionTrade, Kind::OptionMarks]);
        let amount_kind = sum(ctx, &[Kind::Deposit, Kind::Withdraw]);
        let one_acct = g.add(ctx, amount_kind, fl(Kind::SetKey));
        let signed = g.add(ctx, fl(Kind::Withdraw), fl(Kind::SetKey));
        let plain_trade = sum(ctx, &[Kind::Trade, Kind::OptionTrade]);
        // who fills an order (and signs it): both sides of a trade, the liquidator
        let order_a = plain_trade;
        let order_b = g.add(ctx, plain_trade, fl(Kind::Liquidate));

        // account wiring
        for acct in [a, b] {
            let stray = g.mul_not(ctx, touch, acct);
            self.chips.assert_zero(ctx, stray);
        }
        let ab = g.sub(ctx, b, a);
        let ab = g.mul(ctx, ab, one_acct);
        self.chips.assert_zero(ctx, ab);
        let same = g.is_equal(ctx, a, b);
        let same = g.mul(ctx, same, trade_like);
        self.chips.assert_zero(ctx, same);

        // every field a kind does not use is zero, so the committed encoding
        // is exactly `Transition::encode`'s (accounts: above)
        use Kind::*;
        let mut used: Vec<(V, &[Kind])> = vec![
            (asset, &[Trade, OptionTrade, OraclePrice, OptionMarks, FundingTick, Liquidate, Deleverage]),
            (x, &[Deposit, Withdraw, Trade, OptionTrade, FundingTick, Liquidate, Deleverage]),
            (price, &[Trade, OptionTrade, OraclePrice, OptionMarks, Liquidate, Deleverage]),
            (fee_a, &[Trade, OptionTrade, Liquidate]),
            (fee_b, &[Trade, OptionTrade]),
            (delta, &[OptionMarks]),
            (gamma, &[OptionMarks]),
            (vega, &[OptionMarks]),
            (key[0], &[Deposit, SetKey]),
            (key[1], &[Deposit, SetKey]),
            (nonce, &[Withdraw, SetKey]),
            (timestamp, &[OraclePrice, OptionMarks]),
        ];
        used.extend(orders[0].iter().map(|v| (*v, &[Trade, OptionTrade][..])));
        used.extend(orders[1].iter().map(|v| (*v, &[Trade, OptionTrade, Liquidate][..])));
        for (field, kinds) in used {
            let by = sum(ctx, kinds);
            let stray = g.mul_not(ctx, by, field);
            self.chips.assert_zero(ctx, stray);
        }
        // a key is (0, 0) or has a non-zero x (every usable key does); a
        // set_key carries one
        let keyless = g.is_zero(ctx, key[0]);
        let stray = g.mul(ctx, keyless, key[1]);
        self.chips.assert_zero(ctx, stray);
        let has_key = g.not(ctx, keyless);
        let missing = g.mul(ctx, keyless, fl(SetKey));
        self.chips.assert_zero(ctx, missing);

        // asset indicators
        let ind_m = g.idx_to_indicator(ctx, asset, shape.markets);
        let cnt = g.sum(ctx, ind_m.iter().copied());
        let miss = g.mul_not(ctx, cnt, perp_asset);
        self.chips.assert_zero(ctx, miss);
        let ind_s = if shape.series > 0 {
            let ind = g.idx_to_indicator(ctx, asset, shape.series);
            let cnt = g.sum(ctx, ind.iter().copied());
            let miss = g.mul_not(ctx, cnt, series_asset);
            self.chips.assert_zero(ctx, miss);
            ind
        } else {
            self.chips.assert_zero(ctx, series_asset);
            vec![]
        };

        // a funding tick's rate is bounded by its market's limit (DESIGN.md §2;
        // `x` alone is wider): |rate| <= max_funding_rate < 2^48
        let rate = g.mul(ctx, x, fl(FundingTick));
        let sign = self.chips.is_neg(ctx, rate, fixed::FUNDING_RATE.bits - 1);
        let neg_rate = g.neg(ctx, rate);
        let abs_rate = g.select(ctx, neg_rate, rate, sign);
        let cap = g.select_by_indicator(ctx, t.maxf.iter().copied(), ind_m.iter().copied());
        let room = g.sub(ctx, cap, abs_rate);
        self.chips.range.range_check(ctx, room, fixed::MAX_FUNDING_RATE.bits);

        self.chips.tally(ctx, "encoding", from);
        // deltas
        let from = ctx.advice.len();
        let one6 = Constant(Fr::from(Fx6::ONE as u64));
        let xp = g.mul(ctx, x, price);
        let x6 = g.mul(ctx, x, one6);
        let fa6 = g.mul(ctx, fee_a, one6);
        let fb6 = g.mul(ctx, fee_b, one6);
        let dep_sign = g.sub(ctx, fl(Kind::Deposit), fl(Kind::Withdraw));
        let paid_a = g.add(ctx, xp, fa6);
        let paid_a = g.mul(ctx, paid_a, trade_like);
        let a_coll = g.mul(ctx, x6, dep_sign);
        let a_coll = g.sub(ctx, a_coll, paid_a);
        let got_b = g.sub(ctx, xp, fb6);
        let b_coll = g.mul(ctx, got_b, trade_like);
        let x_perp = g.mul(ctx, x, perp_trade);
        let x_opt = g.mul(ctx, x, fl(Kind::OptionTrade));
        let a_size: Vec<V> = ind_m.iter().map(|i| g.mul(ctx, x_perp, *i)).collect();
        let b_size: Vec<V> = a_size.iter().map(|v| g.neg(ctx, *v)).collect();
        let neg_x = g.neg(ctx, x);
        let a_opt: Vec<V> = ind_s.iter().map(|i| g.mul(ctx, x_opt, *i)).collect();
        let b_opt: Vec<V> = a_opt.iter().map(|v| g.neg(ctx, *v)).collect();

        self.chips.tally(ctx, "deltas", from);
        let merkle_before = self.chips.parts.borrow().get("merkle").copied().unwrap_or(0);
        let orders_before = self.chips.parts.borrow().get("orders").copied().unwrap_or(0);
        let from = ctx.advice.len();
        let a_pos = self.chips.positions(ctx, a, shape.depth);
        let b_pos = self.chips.positions(ctx, b, shape.depth);
        let ua = self.update(
            ctx,
            acc_root,
            &a_pos,
            &s.a_leaf,
            &s.a_path,
            &s.hints.funding_a,
            &s.orders[0],
            touch,
            t,
            Deltas {
                coll: a_coll,
                size: a_size,
                opt: a_opt,
                auth: Some(Auth { signed, nonce, deposit: fl(Kind::Deposit), set_key: fl(Kind::SetKey), key, has_key }),
                order: OrderCells { on: order_a, terms: orders[0], change: x, price, fee: fee_a },
            },
        );
        let ub = self.update(
            ctx,
            ua.root,
            &b_pos,
            &s.b_leaf,
            &s.b_path,
            &s.hints.funding_b,
            &s.orders[1],
            touch,
            t,
            Deltas {
                coll: b_coll,
                size: b_size,
                opt: b_opt,
                auth: None,
                order: OrderCells { on: order_b, terms: orders[1], change: neg_x, price, fee: fee_b },
            },
        );

        let merkle = self.chips.parts.borrow()["merkle"] - merkle_before;
        let in_orders = self.chips.parts.borrow().get("orders").copied().unwrap_or(0) - orders_before;
        *self.chips.parts.borrow_mut().entry("accounts (leaves, funding, keys)").or_default() +=
            ctx.advice.len() - from - merkle - in_orders;
        let from = ctx.advice.len();
        // what a's key signs: its withdrawal, key change or order; b's: its order
        let amount = g.mul_add(ctx, x, signed, orders[0][0]);
        let zero = ctx.load_zero();
        let [oa, ob] = orders;
        let signer_a = g.add(ctx, signed, order_a);
        let message_a = [self.tag, kind, a, asset, amount, oa[1], oa[2], oa[3], oa[4], key[0], key[1], nonce];
        let m = self.chips.hash(ctx, Domain::Authorize, &message_a);
        self.verify_signature(ctx, e.signature.as_ref(), ua.set.key, m, signer_a);
        let message_b = [self.tag, kind, b, asset, ob[0], ob[1], ob[2], ob[3], ob[4], zero, zero, zero];
        let m = self.chips.hash(ctx, Domain::Authorize, &message_b);
        self.verify_signature(ctx, e.signature_b.as_ref(), ub.set.key, m, order_b);
        self.chips.tally(ctx, "authorization", from);
        // market table
        let from = ctx.advice.len();
        let mut t2 = t.clone();
        let is_oracle = fl(Kind::OraclePrice);
        let is_funding = fl(Kind::FundingTick);
        let x_fund = g.mul(ctx, x, is_funding);
        let is_marks = fl(Kind::OptionMarks);
        self.oracle_update(
            ctx,
            t,
            [is_oracle, is_marks],
            [&ind_m, &ind_s],
            [kind, asset, timestamp],
            [price, delta, gamma, vega],
        );
        for m in 0..shape.markets {
            let sel = g.mul(ctx, is_oracle, ind_m[m]);
            t2.mark[m] = g.select(ctx, price, t.mark[m], sel);
            t2.otime[m] = g.select(ctx, timestamp, t.otime[m], sel);
            t2.fidx[m] = g.mul_add(ctx, x_fund, ind_m[m], t.fidx[m]);
            self.chips.bound(ctx, t2.fidx[m], fixed::FUNDING_INDEX);
            let mut oi = t.oi[m];
            for (leaf, neg, sign) in [
                (&ua.new, &ua.neg_new, true),
                (&ua.set, &ua.neg_set, false),
                (&ub.new, &ub.neg_new, true),
                (&ub.set, &ub.neg_set, false),
            ] {
                let long = g.mul_not(ctx, neg[m], leaf.sizes[m]);
                oi = if sign { g.add(ctx, oi, long) } else { g.sub(ctx, oi, long) };
            }
            t2.oi[m] = oi;
            self.chips.bound(ctx, oi, fixed::OPEN_INTEREST);
        }
        for j in 0..shape.series {
            let sel = g.mul(ctx, is_marks, ind_s[j]);
            t2.prem[j] = g.select(ctx, price, t.prem[j], sel);
            t2.stime[j] = g.select(ctx, timestamp, t.stime[j], sel);
            t2.delta[j] = g.select(ctx, delta, t.delta[j], sel);
            t2.gamma[j] = g.select(ctx, gamma, t.gamma[j], sel);
            t2.vega[j] = g.select(ctx, vega, t.vega[j], sel);
        }
        let fees = g.add(ctx, fa6, fb6);
        t2.fund = g.mul_add(ctx, fees, trade_like, t.fund);
        self.chips.bound(ctx, t2.fund, fixed::FUND);

        self.chips.tally(ctx, "market table", from);
        // margin rules (marks and Greeks never change in a step that touches accounts)
        let from = ctx.advice.len();
        let mv = self.moves(ctx, t);
        let hr = &s.hints.risk;
        let ra_b = self.risk(ctx, &ua.set, &ua.neg_set, t, &mv, hr[0]);
        let ra_a = self.risk(ctx, &ua.new, &ua.neg_new, t, &mv, hr[1]);
        let rb_b = self.risk(ctx, &ub.set, &ub.neg_set, t, &mv, hr[2]);
        let rb_a = self.risk(ctx, &ub.new, &ub.neg_new, t, &mv, hr[3]);
        let wm_a = self.well_margined(ctx, &ra_a);
        let wm_b = self.well_margined(ctx, &rb_a);
        let shrink_a = self.shrinks(ctx, &ua.set, &ua.new);
        let shrink_b = self.shrinks(ctx, &ub.set, &ub.new);
        let rr_a = self.risk_reducing(ctx, shrink_a, &ra_b, &ra_a);
        let rr_b = self.risk_reducing(ctx, shrink_b, &rb_b, &rb_a);
        let liq_a = self.liquidatable(ctx, &ra_b);
        let delev_a = self.chips.is_neg(ctx, ra_b.tv_raw, TV_RAW_BITS);

        let free_a = sum(
            ctx,
            &[Kind::Noop, Kind::Deposit, Kind::OraclePrice, Kind::OptionMarks, Kind::FundingTick, Kind::SetKey],
        );
        let trade_ok_a = g.or(ctx, wm_a, rr_a);
        let liq_ok_a = g.and(ctx, liq_a, rr_a);
        let delev_ok_a = g.and(ctx, delev_a, rr_a);
        let ok_a = g.inner_product(
            ctx,
            [fl(Kind::Withdraw), plain_trade, fl(Kind::Liquidate), fl(Kind::Deleverage)],
            [Existing(wm_a), Existing(trade_ok_a), Existing(liq_ok_a), Existing(delev_ok_a)],
        );
        let ok_a = g.add(ctx, ok_a, free_a);
        self.chips.assert_one(ctx, ok_a);

        let free_b = g.add(ctx, free_a, fl(Kind::Withdraw));
        let trade_ok_b = g.or(ctx, wm_b, rr_b);
        let delev_ok_b = g.and(ctx, shrink_b, trade_ok_b);
        let ok_b = g.inner_product(
            ctx,
            [plain_trade, fl(Kind::Liquidate), fl(Kind::Deleverage)],
            [Existing(trade_ok_b), Existing(wm_b), Existing(delev_ok_b)],
        );
        let ok_b = g.add(ctx, ok_b, free_b);
        self.chips.assert_one(ctx, ok_b);

        self.chips.tally(ctx, "margin", from);
        // signs of parameters
        let from = ctx.advice.len();
        let x_m1 = g.sub(ctx, x, Constant(Fr::one()));
        let x_nonpos = self.chips.is_neg(ctx, x_m1, X.bits + 1);
        let bad = g.mul(ctx, x_nonpos, amount_kind);
        self.chips.assert_zero(ctx, bad);
        let x_zero = g.is_zero(ctx, x);
        let bad = g.mul(ctx, x_zero, trade_like);
        self.chips.assert_zero(ctx, bad);
        let priced = g.add(ctx, trade_like, is_oracle);
        let p_zero = g.is_zero(ctx, price);
        let bad = g.mul(ctx, p_zero, priced);
        self.chips.assert_zero(ctx, bad);

        let real = g.not(ctx, fl(Kind::Noop));
        self.chips.tally(ctx, "encoding", from);
        (ub.root, t2, commit, real, fl(Kind::Liquidate))
    }
}

/// Constrains `flags` to be bits with exactly one set.
fn one_hot(chips: &Chips, ctx: &mut Context<Fr>, flags: &[V]) {
    for f in flags {
        chips.gate().assert_bit(ctx, *f);
    }
    let n = chips.gate().sum(ctx, flags.iter().copied());
    chips.assert_one(ctx, n);
}

/// Error for a witness that does not fit its shape (e.g. a corrupted job).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("batch witness does not match its shape: {0}")]
pub struct WitnessShapeError(pub String);

/// Checks that a witness has the sizes its shape requires.
pub fn check_witness(w: &BatchWitness) -> Result<(), WitnessShapeError> {
    let s = &w.shape;
    let err = |m: &str| Err(WitnessShapeError(m.to_string()));
    if s.validate().is_err() {
        return err("invalid shape");
    }
    if w.steps.len() != s.capacity {
        return err("step count differs from capacity");
    }
    let mt = &w.markets;
    if mt.markets.len() != s.markets || mt.series.len() != s.series || mt.scenarios.len() != s.scenarios {
        return err("market table size");
    }
    for st in &w.steps {
        for leaf in [&st.a_leaf, &st.b_leaf] {
            if leaf.perps.len() != s.markets || leaf.options.len() != s.series {
                return err("account slots");
            }
        }
        let path = smt::SIBLINGS * smt::levels(s.depth);
        if st.a_path.len() != path || st.b_path.len() != path {
            return err("Merkle path length");
        }
        if st.hints.funding_a.len() != s.markets || st.hints.funding_b.len() != s.markets {
            return err("funding hints");
        }
        if st.orders.iter().any(|o| o.path.len() != smt::SIBLINGS * smt::levels(ORDER_BITS)) {
            return err("orders path length");
        }
    }
    Ok(())
}

/// Lays out the batch circuit for `w` in `builder` (phase 0, lookups enabled),
/// sets its [`crate::witness::PUBLIC_LEN`] public inputs and returns the
/// hashes for the Poseidon chip.
type Parts = std::collections::BTreeMap<&'static str, usize>;

/// What [`build`] leaves for the custom chips.
struct Laid {
    hashes: Vec<HashJob>,
    sigs: Vec<SigJob>,
    parts: Parts,
    /// Hash jobs and signatures of the oracle quote sets (the first ones).
    sets: (usize, usize),
}

fn build(builder: &mut BaseCircuitBuilder<Fr>, w: &BatchWitness) -> Result<Laid, WitnessShapeError> {
    check_witness(w)?;
    let range = builder.range_chip();
    let ctx = builder.main(0);
    let chips = Chips { range, hashes: Default::default(), parts: Default::default(), sigs: Default::default() };
    let mut t = Table::load(ctx, &w.markets);
    let g = chips.gate();
    let und_ind: Vec<Vec<V>> = t
        .und
        .iter()
        .map(|u| {
            let ind = g.idx_to_indicator(ctx, *u, w.shape.markets);
            let cnt = g.sum(ctx, ind.iter().copied());
            chips.assert_one(ctx, cnt);
            ind
        })
        .collect();
    let tag = ctx.load_witness(w.public.chain_tag);
    let seq = ctx.load_witness(Fr::from(w.public.seq));
    let mut slots = Slots { chips, w, tag, seq, und_ind, sets: vec![], updates: Default::default() };
    slots.sets = slots.quote_sets(ctx, &t);
    let sets = (slots.chips.hashes.borrow().jobs.len(), slots.chips.sigs.borrow().len());
    let market_root = slots.chips.hash(ctx, Domain::Market, &t.fields());
    let mut acc_root = ctx.load_witness(w.accounts_root);
    let old_root = slots.chips.hash(ctx, Domain::State, &[acc_root, market_root]);
    let mut commit = slots.chips.hash(ctx, Domain::CommitStart, &[tag, seq]);
    let mut real = vec![];
    let mut liq = vec![];
    for s in &w.steps {
        let (root, t2, c, r, lq) = slots.step(ctx, s, acc_root, &t, commit);
        (acc_root, t, commit) = (root, t2, c);
        real.push(r);
        liq.push(lq);
    }
    let g = slots.chips.gate();
    // real transitions first, then padding, and at least one real one: a
    // batch proof always stands for a non-empty batch
    slots.chips.assert_one(ctx, real[0]);
    for pair in real.windows(2) {
        let late = g.mul_not(ctx, pair[0], pair[1]);
        slots.chips.assert_zero(ctx, late);
    }
    let n_real = g.sum(ctx, real);
    let n_liq = g.sum(ctx, liq);
    let market_root = slots.chips.hash(ctx, Domain::Market, &t.fields());
    let new_root = slots.chips.hash(ctx, Domain::State, &[acc_root, market_root]);
    builder.assigned_instances = vec![vec![old_root, new_root, commit, n_real, n_liq, tag, seq]];
    Ok(Laid {
        hashes: slots.chips.hashes.into_inner().jobs,
        sigs: slots.chips.sigs.into_inner(),
        parts: slots.chips.parts.into_inner(),
        sets,
    })
}

/// The Poseidon chip of the batch circuit (width [`poseidon::WIDTH`]).
pub type PoseidonChip = PoseidonConfig<{ poseidon::WIDTH }>;

/// The batch circuit of one witness: halo2-base's gates and range checks,
/// and the Poseidon chip's and the EdDSA chip's rows (on the same columns,
/// the signatures below the hashes) tied to them by copy constraints.
#[derive(Debug, Clone)]
pub struct BatchCircuit {
    /// The halo2-base part (virtual cells, public inputs).
    pub builder: BaseCircuitBuilder<Fr>,
    hashes: Vec<HashJob>,
    sigs: Vec<SigJob>,
    parts: Parts,
    sets: (usize, usize),
}

impl BatchCircuit {
    /// Lays out `w` in `builder` (any stage).
    pub fn new(mut builder: BaseCircuitBuilder<Fr>, w: &BatchWitness) -> Result<Self, WitnessShapeError> {
        let Laid { hashes, sigs, parts, sets } = build(&mut builder, w)?;
        Ok(BatchCircuit { builder, hashes, sigs, parts, sets })
    }

    /// The public inputs the circuit computes.
    pub fn instances(&self) -> Vec<Fr> {
        self.builder.assigned_instances[0].iter().map(|v| *v.value()).collect()
    }

    /// Rows of the Poseidon chip.
    pub fn poseidon_rows(&self) -> usize {
        self.hashes.iter().map(|j| chip::hash_rows(poseidon::params(), j.inputs.len())).sum()
    }

    /// Rows of the EdDSA chip.
    pub fn signature_rows(&self) -> usize {
        self.sigs.len() * eddsa_chip::ROWS
    }
}

impl Circuit<Fr> for BatchCircuit {
    type Config = (BaseConfig<Fr>, PoseidonChip, EddsaConfig);
    type FloorPlanner = SimpleFloorPlanner;
    type Params = BaseCircuitParams;

    fn params(&self) -> BaseCircuitParams {
        self.builder.config_params.clone()
    }

    fn without_witnesses(&self) -> Self {
        unreachable!("halo2-axiom's key generation and provers never ask for a batch circuit without witnesses")
    }

    fn configure_with_params(meta: &mut ConstraintSystem<Fr>, params: BaseCircuitParams) -> Self::Config {
        let base = BaseConfig::configure(meta, params);
        let hashes = PoseidonConfig::configure(meta, poseidon::params());
        let adv = hashes.advice_columns().try_into().expect("the Poseidon chip has the EdDSA chip's column count");
        let fixed = [hashes.fixed_columns()[0], hashes.fixed_columns()[1]];
        let sigs = EddsaConfig::configure(meta, adv, fixed);
        (base, hashes, sigs)
    }

    fn configure(_: &mut ConstraintSystem<Fr>) -> Self::Config {
        unreachable!("the batch circuit is configured with its parameters")
    }

    fn synthesize(
        &self,
        (base, chip, sig_chip): Self::Config,
        mut layouter: impl Layouter<Fr>,
    ) -> Result<(), PlonkError> {
        self.builder.synthesize(base, layouter.namespace(|| "halo2-base"))?;
        let witness_only = self.builder.witness_gen_only();
        let copies = self.builder.core().copy_manager.lock().map_err(|_| PlonkError::Synthesis)?;
        let cell_of = |v: &V| -> Option<Cell> {
            if witness_only {
                None
            } else {
                v.cell.and_then(|c| copies.assigned_advices.get(&c).copied())
            }
        };
        layouter.assign_region(
            || "poseidon and eddsa",
            |mut region| {
                let end = chip.assign(&mut region, poseidon::params(), &self.hashes, &cell_of);
                sig_chip.assign(&mut region, end, &self.sigs, &cell_of);
                Ok(())
            },
        )
    }
}

/// Version of the batch circuit's constraints: bump it whenever a change
/// alters the constraint system or its layout.
pub const CIRCUIT_VERSION: u32 = 5;

/// SHA-256 (hex) of this crate's sources and of the workspace's Cargo.lock,
/// computed at build time (`build.rs`). Key caches are addressed by it
/// besides [`CIRCUIT_VERSION`], so no code change can leave a stale key in
/// use, whether or not the version was bumped.
pub const CIRCUIT_DIGEST: &str = env!("STATESYNC_CIRCUIT_DIGEST");

/// Rows kept free at the bottom of the circuit for blinding.
pub const MIN_ROWS: usize = 20;
/// Advice columns of halo2-base the layout aims for: fewer columns mean a
/// larger `k`.
pub const TARGET_ADVICE: usize = 16;

/// The sizes of a shape's circuit (independent of the witness).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CellCounts {
    /// Advice cells of halo2-base's gate.
    pub advice: usize,
    /// Cells copied into lookup columns (range checks).
    pub lookup: usize,
    /// Rows of the Poseidon chip.
    pub poseidon_rows: usize,
    /// Advice columns of the Poseidon chip (the EdDSA chip's too).
    pub poseidon_columns: usize,
    /// Rows of the EdDSA chip (below the Poseidon chip's).
    pub signature_rows: usize,
}

impl CellCounts {
    /// Advice cells in all: halo2-base's, and the two chips' rows times their columns.
    pub fn total_advice(&self) -> usize {
        self.advice + (self.poseidon_rows + self.signature_rows) * self.poseidon_columns
    }

    /// Rows the two chips fill.
    pub fn chip_rows(&self) -> usize {
        self.poseidon_rows + self.signature_rows
    }
}

/// Counts the cells of `shape`'s circuit.
pub fn cell_counts(shape: &Shape) -> Result<CellCounts, WitnessShapeError> {
    shape.validate().map_err(|e| WitnessShapeError(e.to_string()))?;
    let b = BaseCircuitBuilder::new(false).use_k(16).use_lookup_bits(15).use_instance_columns(1);
    let mut c = BatchCircuit::new(b, &engine::padding_witness(shape))?;
    let stats = c.builder.statistics();
    let counts = CellCounts {
        advice: stats.gate.total_advice_per_phase[0],
        lookup: stats.total_lookup_advice_per_phase[0],
        poseidon_rows: c.poseidon_rows(),
        poseidon_columns: 2 * poseidon::WIDTH,
        signature_rows: c.signature_rows(),
    };
    c.builder.clear();
    Ok(counts)
}

/// The circuit configuration of a shape: the smallest `k` (lookup bits
/// `k - 1`) at which the two chips' rows fit and halo2-base's cells fit
/// in [`TARGET_ADVICE`] advice columns. Deterministic, so keys generated with
/// it can be cached per shape.
pub fn layout(shape: &Shape) -> Result<BaseCircuitParams, WitnessShapeError> {
    let counts = cell_counts(shape)?;
    let mut k = 10;
    while counts.chip_rows() + MIN_ROWS > 1 << k || counts.advice > TARGET_ADVICE * ((1usize << k) - MIN_ROWS) {
        k += 1;
    }
    let w = engine::padding_witness(shape);
    let b = BaseCircuitBuilder::new(false).use_k(k).use_lookup_bits(k - 1).use_instance_columns(1);
    let mut c = BatchCircuit::new(b, &w)?;
    let params = c.builder.calculate_params(Some(MIN_ROWS));
    c.builder.clear();
    Ok(params)
}

/// What an operator needs to size a deployment of a shape (`statesync shape`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShapeReport {
    /// The shape.
    pub shape: Shape,
    /// `log2` of the rows.
    pub k: usize,
    /// Rows (`2^k`).
    pub rows: usize,
    /// Rows halo2-base's columns fill.
    pub halo2_base_rows: usize,
    /// Rows the Poseidon chip fills.
    pub poseidon_rows: usize,
    /// Rows the EdDSA chip fills (on the Poseidon chip's columns, below its rows).
    pub signature_rows: usize,
    /// Advice columns of halo2-base's gate.
    pub halo2_base_advice_columns: usize,
    /// Advice columns of the Poseidon chip (shared with the EdDSA chip).
    pub poseidon_advice_columns: usize,
    /// Advice columns of the range-check lookup.
    pub lookup_advice_columns: usize,
    /// Fixed columns (before halo2 turns the selectors into fixed columns).
    pub fixed_columns: usize,
    /// Selectors.
    pub selectors: usize,
    /// Degree of the constraint system.
    pub degree: usize,
    /// Advice cells in all (halo2-base's, and the chip's rows times its columns).
    pub advice_cells: usize,
    /// Advice cells per transition slot.
    pub advice_cells_per_slot: usize,
    /// Advice cells per slot by part: halo2-base's, then the Poseidon chip's
    /// per hash domain, then the EdDSA chip's.
    pub slot_parts: std::collections::BTreeMap<String, usize>,
    /// Advice cells per oracle update's quote set (all three parts; not in
    /// the slots' figures).
    pub oracle_update_cells: usize,
    /// Cells copied into the lookup columns (range checks).
    pub lookup_cells: usize,
    /// Lookup cells per slot.
    pub lookup_cells_per_slot: usize,
}

/// The [`ShapeReport`] of `shape`.
pub fn report(shape: &Shape) -> Result<ShapeReport, WitnessShapeError> {
    let params = layout(shape)?;
    let k = params.k;
    let mut c = circuit_for(&params, &engine::padding_witness(shape), false)?;
    let stats = c.builder.statistics();
    let (advice, lookup) = (stats.gate.total_advice_per_phase[0], stats.total_lookup_advice_per_phase[0]);
    let width = 2 * poseidon::WIDTH;
    let slots = shape.capacity;
    let rows =
        |jobs: &[HashJob]| -> usize { jobs.iter().map(|j| chip::hash_rows(poseidon::params(), j.inputs.len())).sum() };
    let (set_jobs, set_sigs) = c.sets;
    let set_cells = c.parts.get("oracle quote sets").copied().unwrap_or(0)
        + (rows(&c.hashes[..set_jobs]) + set_sigs * eddsa_chip::ROWS) * width;
    let mut parts: std::collections::BTreeMap<String, usize> = c
        .parts
        .iter()
        .filter(|(name, _)| **name != "oracle quote sets")
        .map(|(name, cells)| (format!("halo2-base: {name}"), cells / slots))
        .collect();
    for (domains, name) in [
        (&[Domain::Leaf][..], "leaves"),
        (&[Domain::Order], "order leaves"),
        (&[Domain::Node], "tree nodes (accounts and orders)"),
        (&[Domain::Commit], "commitment"),
        (&[Domain::Authorize, Domain::Signature], "authorization"),
    ] {
        let jobs: Vec<HashJob> = c.hashes[set_jobs..].iter().filter(|j| domains.contains(&j.domain)).cloned().collect();
        parts.insert(format!("poseidon chip: {name}"), rows(&jobs) * width / slots);
    }
    let (poseidon_rows, signature_rows) = (c.poseidon_rows(), c.signature_rows());
    parts.insert("eddsa chip: signatures".into(), (signature_rows - set_sigs * eddsa_chip::ROWS) * width / slots);
    c.builder.clear();
    // per slot: between shapes without quote sets that differ in capacity
    let lookup_per_slot = {
        let mut none = shape.clone();
        none.oracle_updates = 0;
        let all = cell_counts(&none)?.lookup;
        none.capacity = 1;
        let one = cell_counts(&none)?.lookup;
        if slots > 1 {
            (all - one) / (slots - 1)
        } else {
            one
        }
    };
    let mut cs = ConstraintSystem::<Fr>::default();
    BatchCircuit::configure_with_params(&mut cs, params.clone());
    let base_columns = params.num_advice_per_phase[0];
    Ok(ShapeReport {
        shape: shape.clone(),
        k,
        rows: 1 << k,
        halo2_base_rows: advice.div_ceil(base_columns.max(1)),
        poseidon_rows,
        signature_rows,
        halo2_base_advice_columns: base_columns,
        poseidon_advice_columns: width,
        lookup_advice_columns: params.num_lookup_advice_per_phase[0],
        fixed_columns: cs.num_fixed_columns(),
        selectors: cs.num_selectors(),
        degree: cs.degree(),
        advice_cells: advice + (poseidon_rows + signature_rows) * width,
        advice_cells_per_slot: parts.values().sum(),
        slot_parts: parts,
        oracle_update_cells: set_cells / shape.oracle_updates.max(1),
        lookup_cells: lookup,
        lookup_cells_per_slot: lookup_per_slot,
    })
}

/// A batch circuit laid out for `w` with `params` (keygen/mock mode).
pub fn circuit_for(
    params: &BaseCircuitParams,
    w: &BatchWitness,
    witness_only: bool,
) -> Result<BatchCircuit, WitnessShapeError> {
    BatchCircuit::new(BaseCircuitBuilder::new(witness_only).use_params(params.clone()), w)
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use halo2_base::halo2_proofs::dev::MockProver;

    use super::*;
    use crate::{
        config::ChainConfig,
        engine::Mode,
        examples,
        fixed::Fixed,
        state::ChainState,
        testutil::{apply, fx, liquidate, option_trade, price, sign_missing, trade},
        transition::{Encoded, Order, PriceQuote, Transition},
    };

    fn small_chain(capacity: usize) -> ChainConfig {
        examples::chain_with(capacity, 3)
    }

    fn params(shape: &Shape) -> BaseCircuitParams {
        static CACHE: OnceLock<std::sync::Mutex<std::collections::HashMap<String, BaseCircuitParams>>> =
            OnceLock::new();
        let cache = CACHE.get_or_init(Default::default);
        let mut c = cache.lock().unwrap();
        c.entry(shape.id()).or_insert_with(|| layout(shape).unwrap()).clone()
    }

    /// Whether MockProver accepts `w` with its claimed public inputs.
    fn satisfied(w: &BatchWitness) -> bool {
        let p = params(&w.shape);
        let c = circuit_for(&p, w, false).unwrap();
        let prover = MockProver::run(p.k as u32, &c, vec![w.public.to_fields()]).unwrap();
        prover.verify().is_ok()
    }

    /// Genesis of the small chain after a setup batch applied with the rules on.
    fn state_after(capacity: usize, setup: &[Transition]) -> ChainState {
        let st = small_chain(capacity).genesis_state();
        if setup.is_empty() {
            return st;
        }
        let mut s = st;
        for chunk in setup.chunks(capacity) {
            s = apply(&s, chunk, Mode::Enforce).expect("setup applies").state;
        }
        s
    }

    fn witness(st: &ChainState, ts: &[Transition], mode: Mode) -> BatchWitness {
        apply(st, ts, mode).expect("applies").witness
    }

    /// A circuit of one hash of `inputs` (Leaf domain) whose digest is the
    /// public input.
    fn hash_circuit(inputs: &[Fr]) -> BatchCircuit {
        let mut b = BaseCircuitBuilder::new(false).use_k(11).use_lookup_bits(10).use_instance_columns(1);
        let chips = Chips {
            range: b.range_chip(),
            hashes: Default::default(),
            parts: Default::default(),
            sigs: Default::default(),
        };
        let ctx = b.main(0);
        let cells: Vec<V> = inputs.iter().map(|v| ctx.load_witness(*v)).collect();
        let out = chips.hash(ctx, Domain::Leaf, &cells);
        b.assigned_instances = vec![vec![out]];
        b.calculate_params(Some(MIN_ROWS));
        BatchCircuit {
            builder: b,
            hashes: chips.hashes.into_inner().jobs,
            sigs: vec![],
            parts: Parts::new(),
            sets: (0, 0),
        }
    }

    /// MockProver's failures of a one-hash circuit claiming the native digest.
    fn hash_failures(inputs: &[Fr]) -> Vec<String> {
        let c = hash_circuit(inputs);
        let expect = poseidon::hash(Domain::Leaf, inputs);
        match MockProver::run(11, &c, vec![vec![expect]]).unwrap().verify() {
            Ok(()) => vec![],
            Err(fs) => fs.iter().map(|f| format!("{f}")).collect(),
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(16))]
        /// The chip computes the native hash, for every input length the
        /// protocol uses (2: roots and the commitment start, 4: nodes, 7: a
        /// leaf of the default shape, 12: a commitment link, 31: its market
        /// table) and the lengths around chunk boundaries.
        #[test]
        fn chip_hash_equals_native(seed in proptest::prelude::any::<u64>(), len in proptest::sample::select(vec![0usize, 1, 2, 3, 4, 5, 7, 8, 9, 12, 31])) {
            let inputs: Vec<Fr> = (0..len as u64).map(|i| Fr::from(seed.wrapping_mul(i + 1)) + Fr::from(i)).collect();
            let failures = hash_failures(&inputs);
            proptest::prop_assert!(failures.is_empty(), "len {}: {:?}", len, failures);
        }
    }

    #[test]
    fn poseidon_chip_rejects_a_wrong_sbox_or_round_constant() {
        use crate::poseidon::chip::tamper::{Tamper, TAMPER};
        let inputs: Vec<Fr> = (0..6u64).map(Fr::from).collect();
        // rows 0..3 are full rounds, 4..23 partial, 24..27 full, 28 the absorb row; 29.. the second chunk
        for (t, gate) in [
            (Tamper::SboxOutput(1), "poseidon full round"),
            (Tamper::SboxOutput(10), "poseidon partial rounds"),
            (Tamper::SboxOutput(30), "poseidon full round"),
            (Tamper::RoundConstant(2), "poseidon full round"),
            (Tamper::RoundConstant(12), "poseidon partial rounds"),
        ] {
            TAMPER.with(|c| c.set(t));
            let failures = hash_failures(&inputs);
            TAMPER.with(|c| c.set(Tamper::None));
            assert!(failures.iter().any(|f| f.contains(gate)), "{t:?} must break {gate}: {failures:?}");
        }
        assert!(hash_failures(&inputs).is_empty());
    }

    #[test]
    fn example_batch_proves_on_small_shape() {
        let cfg = small_chain(12);
        let st = cfg.genesis_state();
        let batch = examples::signed_for(&examples::batch_valid(), &cfg);
        let out = crate::engine::apply_batch(&st, &cfg.chain_id, &batch).unwrap();
        assert!(satisfied(&out.witness));
        let mut wrong_root = out.witness.clone();
        wrong_root.public.new_root = wrong_root.public.old_root;
        assert!(!satisfied(&wrong_root), "a wrong new root must fail");
        let mut wrong_count = out.witness.clone();
        wrong_count.public.liquidations = 0;
        assert!(!satisfied(&wrong_count), "a wrong liquidation count must fail");
    }

    /// Carol (3) long 0.5 BTC on 5000; BTC drops to 60000: liquidatable.
    fn carol_underwater() -> ChainState {
        state_after(2, &[trade(0, 3, 2, "0.5", "64000"), price(0, fx("60000"))])
    }

    #[test]
    fn liquidation_of_healthy_account_fails() {
        let st = state_after(2, &[trade(0, 3, 2, "0.5", "64000")]);
        let liq = liquidate(0, 3, 4, "-0.5", "64000", Fixed(0));
        let e = apply(&st, std::slice::from_ref(&liq), Mode::Enforce).unwrap_err();
        assert_eq!(e.rule, "not_liquidatable");
        assert!(!satisfied(&witness(&st, std::slice::from_ref(&liq), Mode::Unchecked)));
        // the same liquidation once the account is underwater is provable
        assert!(satisfied(&witness(&carol_underwater(), &[liq], Mode::Enforce)));
    }

    #[test]
    fn withdraw_past_initial_margin_fails() {
        let st = state_after(2, &[trade(0, 3, 2, "0.5", "64000")]);
        let withdraw = |amount: &str| Transition::withdraw(3, fx(amount), 0, &examples::secret(3), st.tag);
        let w = withdraw("1000");
        assert_eq!(apply(&st, std::slice::from_ref(&w), Mode::Enforce).unwrap_err().rule, "initial_margin");
        assert!(!satisfied(&witness(&st, &[w], Mode::Unchecked)));
        let ok = withdraw("100");
        assert!(satisfied(&witness(&st, &[ok], Mode::Enforce)));
    }

    #[test]
    fn undermargined_trade_that_adds_risk_fails_and_reducing_one_passes() {
        let st = carol_underwater();
        let more = trade(0, 3, 2, "0.1", "60000");
        assert_eq!(apply(&st, std::slice::from_ref(&more), Mode::Enforce).unwrap_err().rule, "initial_margin");
        assert!(!satisfied(&witness(&st, &[more], Mode::Unchecked)));
        let less = trade(0, 3, 2, "-0.2", "60000");
        assert!(satisfied(&witness(&st, &[less], Mode::Enforce)), "risk-reducing trade is allowed");
    }

    /// An update of BTC-PERP to `price` at `timestamp` from `quotes`
    /// (oracle, price); quotes signed unless `f` changes them after.
    fn quoted(
        st: &ChainState,
        price: &str,
        timestamp: u64,
        quotes: &[(u32, &str)],
        f: impl FnOnce(&mut Encoded),
    ) -> Transition {
        let quotes = quotes.iter().map(|(oracle, p)| PriceQuote { oracle: *oracle, price: fx(p), signature: None });
        let t = Transition::OraclePrice { market: 0, price: fx(price), timestamp, quotes: quotes.collect() };
        let mut e = sign_missing(st.tag, &[t]).remove(0).encode();
        f(&mut e);
        e.decode().unwrap()
    }

    #[test]
    fn oracle_quorum_is_constrained() {
        let st = small_chain(1).genesis_state();
        let honest = [(0, "59990"), (1, "60000"), (2, "60012")];
        let proves = |st: &ChainState, t: Transition| satisfied(&witness(st, &[t], Mode::Unchecked));
        let keep = |_: &mut Encoded| {};
        assert!(proves(&st, quoted(&st, "60000", 7, &honest, keep)));
        assert!(proves(&st, quoted(&st, "60000", 7, &honest[1..], keep)), "the lower median of two");
        assert!(!proves(&st, quoted(&st, "60000", 7, &honest[1..2], keep)), "one quote short of the quorum");
        assert!(!proves(&st, quoted(&st, "60000", 7, &[(1, "60000"), (1, "60000")], keep)), "one oracle twice");
        assert!(!proves(&st, quoted(&st, "60012", 7, &honest, keep)), "above the median");
        assert!(!proves(&st, quoted(&st, "59990", 7, &honest, keep)), "below the median");
        let forged = |e: &mut Encoded| e.quotes[2].signature = e.quotes[0].signature.clone();
        assert!(!proves(&st, quoted(&st, "60000", 7, &honest, forged)), "oracle 2's quote signed by oracle 0");
        let moved = |e: &mut Encoded| e.quotes[0].values[0] = 59_991_000_000;
        assert!(!proves(&st, quoted(&st, "60000", 7, &honest, moved)), "a signature over another price");
        // the quote of an oracle slot without a key
        let mut cfg = small_chain(1);
        cfg.oracles.keys.truncate(2);
        let two = cfg.genesis_state();
        assert!(!proves(&two, quoted(&two, "60000", 7, &honest, keep)), "an oracle the chain does not have");
        // timestamps strictly increase per market
        let later = apply(&st, &[quoted(&st, "60000", 7, &honest, keep)], Mode::Enforce).unwrap().state;
        assert!(!proves(&later, quoted(&later, "60000", 7, &honest, keep)), "a stale timestamp");
        assert!(proves(&later, quoted(&later, "60000", 8, &honest, keep)));
    }

    #[test]
    fn other_shapes_prove_too() {
        // one market, no option series, one scenario
        let mut cfg = small_chain(2);
        // and no oracles
        cfg.shape = Shape { capacity: 2, depth: 2, markets: 1, series: 0, scenarios: 1, oracles: 0, oracle_updates: 0 };
        cfg.oracles = Default::default();
        cfg.markets.truncate(1);
        cfg.series.clear();
        cfg.scenarios.truncate(1);
        cfg.genesis.accounts.retain(|a| a.id < 4);
        cfg.validate().unwrap();
        let st = cfg.genesis_state();
        let w = witness(&st, &[Transition::deposit(3, fx("5")), trade(0, 3, 2, "0.01", "64000")], Mode::Enforce);
        assert!(satisfied(&w));
        let mut bad = w.clone();
        bad.steps[1].transition.x += 1;
        assert!(!satisfied(&bad), "a witness with another trade size does not prove the claimed roots");
    }

    /// A witness of `enc` applied as the engine would apply any encoding
    /// (fees charged for every trade-like kind): roots consistent with the
    /// tampered encoding, so only the per-kind field constraints stand in the way.
    fn encoded_witness(st: &ChainState, enc: &[crate::transition::Encoded]) -> BatchWitness {
        engine::build_witness(st, enc, Mode::Unchecked).expect("applies").witness
    }

    #[test]
    fn unused_fields_are_zero_per_kind() {
        let under = carol_underwater();
        let liq = sign_missing(under.tag, &[liquidate(0, 3, 4, "-0.5", "60000", fx("10"))]).remove(0);
        // a liquidation charging the liquidator a maker fee into the fund
        let mut e = liq.encode();
        assert!(satisfied(&encoded_witness(&under, std::slice::from_ref(&e))), "the honest liquidation proves");
        e.fee_b = 5_000_000;
        assert!(!satisfied(&encoded_witness(&under, &[e])), "fee_b on a liquidation");
        // an order for the liquidated account, signed by it
        let mut e = liq.encode();
        let Transition::Trade { taker_order, .. } = trade(0, 3, 4, "0.5", "60000") else { unreachable!() };
        e.orders[0] = taker_order.terms();
        e.set_signature(0, examples::secret(3).sign(e.signed_message(under.tag, 0)));
        assert!(e.decode().is_err());
        assert!(!satisfied(&encoded_witness(&under, &[e])), "an order of the liquidated account");
        // a deleverage moving fees out of either side
        let st = state_after(2, &[trade(1, 5, 2, "2", "3200"), price(1, fx("2600"))]);
        let delev =
            Transition::Deleverage { market: 1, deleveraged: 5, counterparty: 2, size: fx("-2"), price: fx("2600") };
        let e = delev.encode();
        assert!(satisfied(&encoded_witness(&st, std::slice::from_ref(&e))), "the honest deleverage proves");
        for (fa, fb) in [(0, 5_000_000), (5_000_000, 0)] {
            let bad = crate::transition::Encoded { fee_a: fa, fee_b: fb, ..e.clone() };
            assert!(!satisfied(&encoded_witness(&st, &[bad])), "fees ({fa}, {fb}) on a deleverage");
        }
        // a deposit carrying a price
        let g = state_after(2, &[]);
        let dep = Transition::deposit(1, fx("1")).encode();
        assert!(satisfied(&encoded_witness(&g, std::slice::from_ref(&dep))));
        let priced = crate::transition::Encoded { price: 64_000_000_000, ..dep.clone() };
        assert!(priced.decode().is_err());
        assert!(!satisfied(&encoded_witness(&g, &[priced])), "a price on a deposit");
        // a nonce on a deposit, a key on a withdrawal
        let nonced = crate::transition::Encoded { nonce: 1, ..dep };
        assert!(nonced.decode().is_err());
        assert!(!satisfied(&encoded_witness(&g, &[nonced])), "a nonce on a deposit");
        let mut keyed = Transition::withdraw(1, fx("1"), 0, &examples::secret(1), g.tag).encode();
        keyed.key = Some(examples::secret(1).public());
        assert!(keyed.decode().is_err());
        assert!(!satisfied(&encoded_witness(&g, &[keyed])), "a key on a withdrawal");
    }

    #[test]
    fn authorization_is_constrained() {
        let st = state_after(2, &[]);
        let (tag, one, key1) = (st.tag, fx("1"), examples::secret(1));
        let honest = Transition::withdraw(1, one, 0, &key1, tag);
        let w = witness(&st, std::slice::from_ref(&honest), Mode::Enforce);
        assert!(satisfied(&w));
        // what the engine would refuse, laid out anyway
        let unchecked = |st: &ChainState, t: Transition| witness(st, &[t], Mode::Unchecked);
        assert!(!satisfied(&unchecked(&st, Transition::withdraw(1, one, 0, &examples::secret(2), tag))), "another key");
        let Transition::Withdraw { signature, .. } = Transition::withdraw(1, fx("2"), 0, &key1, tag) else {
            unreachable!()
        };
        let other_amount = Transition::Withdraw { account: 1, amount: one, nonce: 0, signature };
        assert!(!satisfied(&unchecked(&st, other_amount)), "a signature over another amount");
        let unsigned = Transition::Withdraw { account: 1, amount: one, nonce: 0, signature: None };
        assert!(!satisfied(&unchecked(&st, unsigned)), "no signature");
        assert!(!satisfied(&unchecked(&st, Transition::withdraw(1, one, 0, &key1, tag + Fr::one()))), "another chain");
        let after = apply(&st, std::slice::from_ref(&honest), Mode::Enforce).unwrap().state;
        assert!(!satisfied(&unchecked(&after, honest.clone())), "a replay at the spent nonce");
        assert!(satisfied(&witness(&after, &[Transition::withdraw(1, one, 1, &key1, tag)], Mode::Enforce)));
        // the leaf's nonce must move: the same step claiming a root where it did not
        let mut kept = after.clone();
        let mut acct = kept.account(1);
        acct.nonce = 0;
        kept.set_account(1, acct);
        let mut stale = w.clone();
        stale.public.new_root = kept.root();
        assert!(!satisfied(&stale), "a withdrawal that leaves the nonce");
        // keys: a first deposit sets one, a deposit never replaces one, set_key needs the current key
        let key6 = examples::secret(6);
        let first = Transition::Deposit { account: 6, amount: one, key: Some(key6.public()) };
        assert!(satisfied(&witness(&st, std::slice::from_ref(&first), Mode::Enforce)));
        let replace = Transition::Deposit { account: 1, amount: one, key: Some(key6.public()) };
        assert!(!satisfied(&unchecked(&st, replace)), "a deposit that replaces a key");
        let set = |key: &crate::eddsa::SecretKey| {
            Transition::SetKey { account: 1, key: key6.public(), nonce: 0, signature: None }.signed(key, tag)
        };
        assert!(satisfied(&witness(&st, &[set(&key1)], Mode::Enforce)));
        assert!(!satisfied(&unchecked(&st, set(&key6))), "set_key signed by the new key");
        // a signed set_key to no key at all (it would reopen the account to its next depositor)
        let mut keyless = set(&key1).encode();
        keyless.key = None;
        keyless.signature = Some(key1.sign(keyless.signed_message(tag, 0)));
        assert!(keyless.decode().is_err());
        assert!(!satisfied(&encoded_witness(&st, &[keyless])), "a set_key without a key");
    }

    /// [`crate::testutil::fill`] with its orders signed (the taker's unless
    /// it carries a signature).
    fn fill(st: &ChainState, size: &str, price: &str, fee: &str, taker: &Order) -> Transition {
        sign_missing(st.tag, &[crate::testutil::fill(size, price, fee, taker)]).remove(0)
    }

    #[test]
    fn orders_are_constrained() {
        let st = state_after(2, &[]);
        let unchecked = |st: &ChainState, t: Transition| witness(st, &[t], Mode::Unchecked);
        // an order of 0.5 (limit 64000, fees up to 2, live through seq 1) filled by 0.3, then 0.2
        let buy = Order::new(fx("0.5"), fx("64000"), fx("2"), 1, 5);
        let first = fill(&st, "0.3", "64000", "1", &buy);
        assert!(satisfied(&witness(&st, std::slice::from_ref(&first), Mode::Enforce)), "an honest fill");
        let st1 = apply(&st, &[first], Mode::Enforce).unwrap().state;
        assert!(satisfied(&witness(&st1, &[fill(&st1, "0.2", "64000", "1", &buy)], Mode::Enforce)), "its second fill");
        assert!(!satisfied(&unchecked(&st1, fill(&st1, "0.3", "64000", "0", &buy))), "filled past its size");
        assert!(!satisfied(&unchecked(&st1, fill(&st1, "0.1", "64000", "1.5", &buy))), "fees past its limit");
        assert!(!satisfied(&unchecked(&st, fill(&st, "0.1", "64000.000001", "0", &buy))), "above its price limit");
        let sell = Order::new(fx("-0.5"), fx("64000"), fx("2"), 1, 6);
        assert!(!satisfied(&unchecked(&st, fill(&st, "0.1", "64000", "0", &sell))), "on the other side");
        let mut late = st1.clone();
        late.next_seq = 2;
        assert!(!satisfied(&unchecked(&late, fill(&late, "0.1", "64000", "0", &buy))), "expired");
        // a later order in the slot ends the earlier one
        let later = Order::new(fx("0.5"), fx("64000"), fx("2"), 1, 5 + 64);
        let mut st2 = apply(&st1, &[fill(&st1, "0.1", "64000", "0", &later)], Mode::Enforce).unwrap().state;
        st2.next_seq = 1;
        assert!(!satisfied(&unchecked(&st2, fill(&st2, "0.1", "64000", "0", &buy))), "a replaced order");
        // signatures: another key; a limit or size altered after signing; none
        let mut by5 = fill(&st, "0.1", "64000", "0", &buy).encode();
        by5.set_signature(0, examples::secret(5).sign(by5.signed_message(st.tag, 0)));
        assert!(!satisfied(&encoded_witness(&st, &[by5])), "signed by another key");
        let mut altered = fill(&st, "0.1", "64000", "0", &buy).encode();
        altered.orders[0].price = fx("65000").raw();
        assert!(!satisfied(&encoded_witness(&st, &[altered])), "a signature over another price limit");
        let mut resized = fill(&st, "0.1", "64000", "0", &buy).encode();
        resized.orders[0].size = fx("5").raw();
        assert!(!satisfied(&encoded_witness(&st, &[resized])), "a signature over another size");
        let mut unsigned = fill(&st, "0.1", "64000", "0", &buy).encode();
        unsigned.signature_b = None;
        assert!(!satisfied(&encoded_witness(&st, &[unsigned])), "no maker signature");
        // the orders tree: a leaf that is not the one under the account's orders root
        let mut w = witness(&st1, &[fill(&st1, "0.1", "64000", "0", &buy)], Mode::Enforce);
        w.steps[0].orders[0].leaf.filled = Fixed(0);
        assert!(!satisfied(&w), "an order leaf with its fills forgotten");
    }

    #[test]
    fn padding_touches_nothing_and_follows_the_real_transitions() {
        let st = state_after(2, &[Transition::deposit(5, fx("3"))]);
        let dep = Transition::deposit(1, fx("1"));
        let w = witness(&st, std::slice::from_ref(&dep), Mode::Enforce);
        assert!(satisfied(&w));
        // the padding slot names account 5 (its real leaf and path): nothing changes, but
        // the encoding is not the padding's
        let mut bad = w.clone();
        let after = apply(&st, std::slice::from_ref(&dep), Mode::Enforce).unwrap().state;
        bad.steps[1].transition.a = 5;
        bad.steps[1].a_leaf = after.account(5);
        bad.steps[1].a_path = after.path(5);
        assert!(!satisfied(&bad), "a padding slot with an account");
        // padding first, the real transition after it (claiming what the circuit counts)
        let noop = crate::transition::Encoded::noop();
        let mut late = encoded_witness(&st, &[noop, dep.encode()]);
        late.public.transitions = 1;
        late.public.commitment = engine::commit(engine::commit_start(st.tag, st.next_seq), &dep.encode());
        assert!(!satisfied(&late), "a real transition after padding");
        // no real transition at all
        let empty = encoded_witness(&st, &[]);
        assert!(!satisfied(&empty), "an empty batch");
    }

    #[test]
    fn funding_rate_past_its_bound_fails() {
        let st = state_after(2, &[]);
        // market 1's max_funding_rate (10), either way, is far inside x's own bound
        let cap = st.markets.markets[1].max_funding_rate.raw();
        assert!(cap < fixed::MAX_FUNDING_RATE.max - 1 && X.contains(cap + 1));
        let tick = Transition::FundingTick { market: 1, rate: Fixed(1) };
        let w = witness(&st, &[tick], Mode::Enforce);
        assert!(satisfied(&w));
        // the same tick at another rate, with the roots and the commitment it would give
        let at = |rate: i128| {
            let mut w = w.clone();
            w.steps[0].transition.x = rate;
            let mut mt = st.markets.clone();
            mt.markets[1].funding_index.0 += rate;
            w.public.new_root = crate::state::state_root(st.accounts_root(), mt.root());
            w.public.commitment = engine::commit(engine::commit_start(st.tag, st.next_seq), &w.steps[0].transition);
            w
        };
        for rate in [cap + 1, -cap - 1, 1 << 48] {
            assert!(!satisfied(&at(rate)), "a funding rate of {rate} (raw) past the market's {cap}");
        }
        // control: the same construction at the limit proves
        assert!(satisfied(&at(cap)) && satisfied(&at(-cap)), "the market's max_funding_rate itself is allowed");
    }

    #[test]
    fn one_type_flag_per_slot() {
        for (flags, ok) in [(vec![0u64, 1, 0], true), (vec![1, 1, 0], false), (vec![0, 0, 0], false)] {
            let w = halo2_base::utils::testing::base_test().k(10).lookup_bits(9).expect_satisfied(ok);
            w.run(|ctx, range| {
                let chips = Chips {
                    range: range.clone(),
                    hashes: Default::default(),
                    parts: Default::default(),
                    sigs: Default::default(),
                };
                let cells: Vec<V> = flags.iter().map(|f| ctx.load_witness(Fr::from(*f))).collect();
                one_hot(&chips, ctx, &cells);
            });
        }
    }

    #[test]
    fn children_swapped_at_one_level_fail() {
        // account 5's leaf level holds accounts 4..7: 4 and 6 differ (6 is funded)
        let st = state_after(2, &[Transition::deposit(6, fx("2"))]);
        let w = witness(&st, &[Transition::deposit(5, fx("1"))], Mode::Enforce);
        assert!(satisfied(&w));
        let mut bad = w.clone();
        // siblings of 5 at level 0, in child order: 4, 6, 7
        bad.steps[0].a_path.swap(0, 1);
        assert_ne!(bad.steps[0].a_path, w.steps[0].a_path);
        assert!(!satisfied(&bad), "accounts 4 and 6 swapped under their node");
    }

    #[test]
    fn wrong_merkle_sibling_fails() {
        let st = state_after(2, &[]);
        let mut w = witness(&st, &[Transition::deposit(1, fx("1"))], Mode::Enforce);
        w.steps[0].a_path[1] += Fr::one();
        assert!(!satisfied(&w));
    }

    #[test]
    fn wrapped_amount_fails() {
        let st = state_after(2, &[]);
        let mut w = witness(&st, &[Transition::deposit(1, fx("1"))], Mode::Enforce);
        // a "deposit" of p - 1e6: the field would wrap it to a withdrawal
        assert!(satisfied(&w));
        // p - 1e6: the field would turn the deposit into a withdrawal
        w.steps[0].transition.x = -1_000_000;
        assert!(!satisfied(&w));
        // far past the amount bound: would overflow collateral
        w.steps[0].transition.x = 1 << 100;
        assert!(!satisfied(&w));
    }

    #[test]
    fn wrong_funding_settlement_fails() {
        let st =
            state_after(2, &[trade(0, 3, 2, "0.5", "64000"), Transition::FundingTick { market: 0, rate: fx("3") }]);
        let w = witness(&st, &[Transition::deposit(3, fx("1"))], Mode::Enforce);
        assert_eq!(w.steps[0].hints.funding_a[0], 3_000_000 * 500_000, "0.5 BTC pays 3 per BTC");
        assert!(satisfied(&w));
        let mut bad = w.clone();
        bad.steps[0].hints.funding_a[0] = 0;
        assert!(!satisfied(&bad));
    }

    #[test]
    fn wrong_greeks_risk_fails() {
        let st = state_after(2, &[option_trade(0, 1, 2, fx("1"), fx("1500"))]);
        let w = witness(&st, &[Transition::deposit(1, fx("1"))], Mode::Enforce);
        assert!(w.steps[0].hints.risk[0] > I256::ZERO, "a long call has scenario risk");
        for i in 0..4 {
            for delta in [I256::ONE, -I256::ONE] {
                let mut bad = w.clone();
                bad.steps[0].hints.risk[i] += delta;
                assert!(!satisfied(&bad), "risk hint {i} off by {delta}");
            }
        }
    }
}
