//! One transition slot of the batch circuit: the same fixed sequence of
//! sub-steps whatever the transition, selected by one-hot type flags
//! ([`Slots::step`]).

use halo2_base::{
    gates::{GateInstructions, RangeInstructions},
    halo2_proofs::halo2curves::{bn256::Fr, ff::PrimeField},
    Context,
    QuantumCell::{Constant, Existing},
};

use super::{
    cells::{Leaf, Table},
    gadgets::{Chips, V},
    oracle::QuoteSet,
};
use crate::{
    babyjub,
    eddsa::{chip::SigJob, Signature},
    engine::X,
    fixed::{self, Bound, Fx6},
    poseidon::Domain,
    smt::ARITY,
    state::fe,
    transition::{Encoded, Kind, NUM_KINDS, ORDER_BITS, ORDER_SLOTS},
    witness::{BatchWitness, OrderSlot, Step},
};

/// The batch's slots: the chips, the witness, and the batch-wide cells every
/// slot reads.
pub(super) struct Slots<'a> {
    pub(super) chips: Chips,
    pub(super) w: &'a BatchWitness,
    /// The chain tag (public), signed in every authorization.
    pub(super) tag: V,
    /// The batch's seq (public): orders expire after a seq.
    pub(super) seq: V,
    /// One-hot indicator of each series' underlying market (fixed per batch).
    pub(super) und_ind: Vec<Vec<V>>,
    /// The batch's oracle quote sets ([`Slots::quote_sets`]).
    pub(super) sets: Vec<QuoteSet>,
    /// Oracle updates applied so far: the next one's quote set.
    pub(super) updates: std::cell::Cell<Option<V>>,
}

/// The per-account deltas of one step.
pub(super) struct Deltas {
    pub(super) coll: V,
    pub(super) size: Vec<V>,
    pub(super) opt: Vec<V>,
    /// Account `a`'s authorization (`None` for `b`).
    pub(super) auth: Option<Auth>,
    /// The account's order.
    pub(super) order: OrderCells,
    /// The fee it pays, in collateral units (into the insurance fund).
    pub(super) fee6: V,
}

/// An order a party fills in a step.
pub(super) struct OrderCells {
    /// 1: the party fills an order.
    pub(super) on: V,
    /// Size limit (signed by side), price limit, fee limit, expiry, id.
    pub(super) terms: [V; 5],
    /// The party's position change.
    pub(super) change: V,
    /// The fill's price.
    pub(super) price: V,
    /// The fee it pays.
    pub(super) fee: V,
}

/// What a step does to account `a`'s key and nonce.
pub(super) struct Auth {
    /// 1: the step is authorized by the account's key at its nonce.
    pub(super) signed: V,
    /// The nonce the transition carries.
    pub(super) nonce: V,
    /// 1: a deposit (it may set a key where none is).
    pub(super) deposit: V,
    /// 1: a set_key.
    pub(super) set_key: V,
    /// The key the transition carries (`(0, 0)`: none).
    pub(super) key: [V; 2],
    /// 1: the transition carries a key.
    pub(super) has_key: V,
}

/// An opened and updated account.
pub(super) struct Updated {
    pub(super) set: Leaf,
    pub(super) new: Leaf,
    pub(super) root: V,
    pub(super) neg_set: Vec<V>,
    pub(super) neg_new: Vec<V>,
    /// The fee the account pays ([`Deltas::fee6`]).
    pub(super) fee6: V,
}

/// A nonce: a `u64`.
pub(super) const NONCE: Bound = Bound { name: "nonce", min: 0, max: 1i128 << 64, bits: 64 };

/// Bits for sign checks of sizes and of an account's raw total value.
const SIZE_BITS: usize = 48;
const TV_RAW_BITS: usize = 128;

impl Slots<'_> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn update(
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
        Updated { set, new, root, neg_set, neg_new, fee6: d.fee6 }
    }

    /// A party's signature over the step's message for it, verified on the
    /// EdDSA chip when `signed` (the leaf's key; a placeholder job
    /// otherwise: the identity as key, which the chip's curve check accepts).
    pub(super) fn verify_signature(
        &self,
        ctx: &mut Context<Fr>,
        sig: Option<&Signature>,
        key: [V; 2],
        m: V,
        signed: V,
    ) {
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
    /// The orders tree of an account after `o` fills (the same root when
    /// `o.on` is 0): the slot `id mod 64` opened against `root`; the order
    /// continues the slot's order of the same id or starts afresh over an
    /// earlier one; it is live at the batch's seq, on the side of the
    /// party's position change, within its price and fee limits and its
    /// size over all its fills.
    pub(super) fn fill_order(&self, ctx: &mut Context<Fr>, root: V, o: &OrderCells, w: &OrderSlot) -> V {
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
}

/// The transition of a slot as cells: its type flags (one-hot) and fields,
/// each bounded as its kind requires.
struct Fields {
    flags: Vec<V>,
    /// The kind's number (the inner product of the flags with 0..).
    kind: V,
    a: V,
    b: V,
    asset: V,
    x: V,
    price: V,
    fee_a: V,
    fee_b: V,
    delta: V,
    gamma: V,
    vega: V,
    nonce: V,
    timestamp: V,
    /// Each party's order terms: size, price limit, fee limit, expiry, id.
    orders: [[V; 5]; 2],
    /// The key a deposit or set_key carries (`(0, 0)`: none).
    key: [V; 2],
}

impl Fields {
    /// The flag of `kind`.
    fn is(&self, kind: Kind) -> V {
        self.flags[kind as usize]
    }
}

/// Sums of type flags that the slot's constraints select by.
struct Groups {
    /// The transition touches accounts (and settles their funding).
    touch: V,
    /// trade, liquidate, deleverage.
    perp_trade: V,
    /// A perp or option trade of any kind.
    trade_like: V,
    /// The asset is a market.
    perp_asset: V,
    /// The asset is an option series.
    series_asset: V,
    /// deposit, withdraw.
    amount_kind: V,
    /// deposit, withdraw, set_key: `b == a`.
    one_acct: V,
    /// withdraw, set_key: signed by account `a` at its nonce.
    signed: V,
    /// trade, option_trade.
    plain_trade: V,
    /// Account `a` fills an order (both sides of a trade).
    order_a: V,
    /// Account `b` fills an order (both sides of a trade, the liquidator).
    order_b: V,
}

/// The market and series indicators of a slot's asset.
struct Indicators {
    market: Vec<V>,
    series: Vec<V>,
}

/// What one slot leaves for the next.
pub(super) struct SlotOut {
    /// The accounts root.
    pub(super) root: V,
    pub(super) table: Table,
    pub(super) commit: V,
    /// 1: a real transition (not padding).
    pub(super) real: V,
    /// 1: a liquidation.
    pub(super) liquidation: V,
}

impl Slots<'_> {
    /// One slot: the sub-steps below in order, each tallied as a part of
    /// [`super::ShapeReport::slot_parts`].
    pub(super) fn step(&self, ctx: &mut Context<Fr>, s: &Step, root: V, t: &Table, commit: V) -> SlotOut {
        let from = ctx.advice.len();
        let f = self.load_fields(ctx, &s.transition);
        let commit = self.extend_commitment(ctx, &f, commit);
        let grp = self.groups(ctx, &f);
        self.check_encoding(ctx, &f, &grp);
        let has_key = self.key_rules(ctx, &f);
        let ind = self.indicators(ctx, &f, &grp);
        self.funding_rate_bound(ctx, t, &f, &ind);
        self.chips.tally(ctx, "encoding", from);

        let from = ctx.advice.len();
        let [da, db] = self.deltas(ctx, &f, &grp, &ind, has_key);
        self.chips.tally(ctx, "deltas", from);

        let (acct_a, acct_b) = self.accounts(ctx, s, root, &f, &grp, t, [da, db]);

        let from = ctx.advice.len();
        self.authorize(ctx, s, &f, &grp, &acct_a, &acct_b);
        self.chips.tally(ctx, "authorization", from);

        let from = ctx.advice.len();
        let table = self.market_table(ctx, t, &f, &grp, &ind, [&acct_a, &acct_b]);
        self.chips.tally(ctx, "market table", from);

        let from = ctx.advice.len();
        self.margin_rules(ctx, s, t, &f, &grp, &acct_a, &acct_b);
        self.chips.tally(ctx, "margin", from);

        let from = ctx.advice.len();
        self.parameter_signs(ctx, &f, &grp);
        let real = self.chips.gate().not(ctx, f.is(Kind::Noop));
        self.chips.tally(ctx, "encoding", from);
        SlotOut { root: acct_b.root, table, commit, real, liquidation: f.is(Kind::Liquidate) }
    }

    /// The type flags (bits, exactly one set) and the fields, range-checked.
    fn load_fields(&self, ctx: &mut Context<Fr>, e: &Encoded) -> Fields {
        let g = self.chips.gate();
        let flags: Vec<V> =
            (0..NUM_KINDS).map(|i| ctx.load_witness(Fr::from(u64::from(e.kind as usize == i)))).collect();
        self.chips.one_hot(ctx, &flags);
        let kind = g.inner_product(ctx, flags.iter().copied(), (0..NUM_KINDS).map(|i| Constant(Fr::from(i as u64))));
        let mut l = |x: i128| ctx.load_witness(fe(x));
        let (a, b, asset, x, price) = (l(e.a as i128), l(e.b as i128), l(e.asset as i128), l(e.x), l(e.price));
        let (fee_a, fee_b, delta, gamma, vega) = (l(e.fee_a), l(e.fee_b), l(e.delta), l(e.gamma), l(e.vega));
        let nonce = l(e.nonce as i128);
        let timestamp = l(e.timestamp as i128);
        let orders = e.orders.map(|o| [l(o.size), l(o.price), l(o.max_fee), l(o.expiry as i128), l(o.id as i128)]);
        let key = e.key_fields().map(|v| ctx.load_witness(v));
        let c = &self.chips;
        c.bound(ctx, nonce, NONCE);
        c.bound(ctx, timestamp, NONCE);
        for [_, limit, max_fee, expiry, id] in orders {
            // (sizes are bounded where their sign is taken)
            c.bound(ctx, limit, fixed::PRICE);
            c.bound(ctx, max_fee, fixed::AMOUNT);
            c.bound(ctx, expiry, NONCE);
            c.bound(ctx, id, NONCE);
        }
        c.bound(ctx, x, X);
        c.bound(ctx, price, fixed::PRICE);
        c.bound(ctx, fee_a, fixed::AMOUNT);
        c.bound(ctx, fee_b, fixed::AMOUNT);
        c.bound(ctx, delta, fixed::DELTA);
        c.bound(ctx, gamma, fixed::GAMMA);
        c.bound(ctx, vega, fixed::VEGA);
        Fields { flags, kind, a, b, asset, x, price, fee_a, fee_b, delta, gamma, vega, nonce, timestamp, orders, key }
    }

    /// The commitment chain extended by a real transition's encoding
    /// (padding leaves it as it is).
    fn extend_commitment(&self, ctx: &mut Context<Fr>, f: &Fields, commit: V) -> V {
        let fields = [
            commit, f.kind, f.a, f.b, f.asset, f.x, f.price, f.fee_a, f.fee_b, f.delta, f.gamma, f.vega, f.key[0],
            f.key[1], f.nonce,
        ];
        let h =
            self.chips.hash(ctx, Domain::Commit, &[&fields[..], &f.orders[0], &f.orders[1], &[f.timestamp]].concat());
        self.chips.gate().select(ctx, commit, h, f.is(Kind::Noop))
    }

    /// The sum of the flags of `kinds`.
    fn any_of(&self, ctx: &mut Context<Fr>, f: &Fields, kinds: &[Kind]) -> V {
        self.chips.gate().sum(ctx, kinds.iter().map(|k| f.is(*k)))
    }

    fn groups(&self, ctx: &mut Context<Fr>, f: &Fields) -> Groups {
        use Kind::*;
        let g = self.chips.gate();
        let touch = self.any_of(ctx, f, &[Deposit, Withdraw, Trade, OptionTrade, Liquidate, Deleverage, SetKey]);
        let perp_trade = self.any_of(ctx, f, &[Trade, Liquidate, Deleverage]);
        let trade_like = g.add(ctx, perp_trade, f.is(OptionTrade));
        let perp_asset = self.any_of(ctx, f, &[Trade, Liquidate, Deleverage, OraclePrice, FundingTick]);
        let series_asset = self.any_of(ctx, f, &[OptionTrade, OptionMarks]);
        let amount_kind = self.any_of(ctx, f, &[Deposit, Withdraw]);
        let one_acct = g.add(ctx, amount_kind, f.is(SetKey));
        let signed = g.add(ctx, f.is(Withdraw), f.is(SetKey));
        let plain_trade = self.any_of(ctx, f, &[Trade, OptionTrade]);
        let order_b = g.add(ctx, plain_trade, f.is(Liquidate));
        Groups {
            touch,
            perp_trade,
            trade_like,
            perp_asset,
            series_asset,
            amount_kind,
            one_acct,
            signed,
            plain_trade,
            order_a: plain_trade,
            order_b,
        }
    }

    /// Accounts are 0 unless touched, `b == a` for one-account kinds and
    /// `b != a` for trades; every field a kind does not use is zero, so the
    /// committed encoding is exactly `Transition::encode`'s.
    fn check_encoding(&self, ctx: &mut Context<Fr>, f: &Fields, grp: &Groups) {
        use Kind::*;
        let g = self.chips.gate();
        for acct in [f.a, f.b] {
            let stray = g.mul_not(ctx, grp.touch, acct);
            self.chips.assert_zero(ctx, stray);
        }
        let ab = g.sub(ctx, f.b, f.a);
        let ab = g.mul(ctx, ab, grp.one_acct);
        self.chips.assert_zero(ctx, ab);
        let same = g.is_equal(ctx, f.a, f.b);
        let same = g.mul(ctx, same, grp.trade_like);
        self.chips.assert_zero(ctx, same);
        let mut used: Vec<(V, &[Kind])> = vec![
            (f.asset, &[Trade, OptionTrade, OraclePrice, OptionMarks, FundingTick, Liquidate, Deleverage]),
            (f.x, &[Deposit, Withdraw, Trade, OptionTrade, FundingTick, Liquidate, Deleverage]),
            (f.price, &[Trade, OptionTrade, OraclePrice, OptionMarks, Liquidate, Deleverage]),
            (f.fee_a, &[Trade, OptionTrade, Liquidate]),
            (f.fee_b, &[Trade, OptionTrade]),
            (f.delta, &[OptionMarks]),
            (f.gamma, &[OptionMarks]),
            (f.vega, &[OptionMarks]),
            (f.key[0], &[Deposit, SetKey]),
            (f.key[1], &[Deposit, SetKey]),
            (f.nonce, &[Withdraw, SetKey]),
            (f.timestamp, &[OraclePrice, OptionMarks]),
        ];
        used.extend(f.orders[0].iter().map(|v| (*v, &[Trade, OptionTrade][..])));
        used.extend(f.orders[1].iter().map(|v| (*v, &[Trade, OptionTrade, Liquidate][..])));
        for (field, kinds) in used {
            let by = self.any_of(ctx, f, kinds);
            let stray = g.mul_not(ctx, by, field);
            self.chips.assert_zero(ctx, stray);
        }
    }

    /// A key is `(0, 0)` or has a non-zero x (every usable key does); a
    /// set_key carries one. Returns 1 when the transition carries a key.
    fn key_rules(&self, ctx: &mut Context<Fr>, f: &Fields) -> V {
        let g = self.chips.gate();
        let keyless = g.is_zero(ctx, f.key[0]);
        let stray = g.mul(ctx, keyless, f.key[1]);
        self.chips.assert_zero(ctx, stray);
        let missing = g.mul(ctx, keyless, f.is(Kind::SetKey));
        self.chips.assert_zero(ctx, missing);
        g.not(ctx, keyless)
    }

    /// The asset's market and series indicators: a kind naming a market or
    /// a series names one that exists.
    fn indicators(&self, ctx: &mut Context<Fr>, f: &Fields, grp: &Groups) -> Indicators {
        let g = self.chips.gate();
        let shape = &self.w.shape;
        let market = g.idx_to_indicator(ctx, f.asset, shape.markets);
        let cnt = g.sum(ctx, market.iter().copied());
        let miss = g.mul_not(ctx, cnt, grp.perp_asset);
        self.chips.assert_zero(ctx, miss);
        let series = if shape.series > 0 {
            let ind = g.idx_to_indicator(ctx, f.asset, shape.series);
            let cnt = g.sum(ctx, ind.iter().copied());
            let miss = g.mul_not(ctx, cnt, grp.series_asset);
            self.chips.assert_zero(ctx, miss);
            ind
        } else {
            self.chips.assert_zero(ctx, grp.series_asset);
            vec![]
        };
        Indicators { market, series }
    }

    /// A funding tick's rate is bounded by its market's limit (DESIGN.md §2;
    /// `x` alone is wider): `|rate| <= max_funding_rate < 2^48`.
    fn funding_rate_bound(&self, ctx: &mut Context<Fr>, t: &Table, f: &Fields, ind: &Indicators) {
        let g = self.chips.gate();
        let rate = g.mul(ctx, f.x, f.is(Kind::FundingTick));
        let sign = self.chips.is_neg(ctx, rate, fixed::FUNDING_RATE.bits - 1);
        let neg_rate = g.neg(ctx, rate);
        let abs_rate = g.select(ctx, neg_rate, rate, sign);
        let cap = g.select_by_indicator(ctx, t.maxf.iter().copied(), ind.market.iter().copied());
        let room = g.sub(ctx, cap, abs_rate);
        self.chips.range.range_check(ctx, room, fixed::MAX_FUNDING_RATE.bits);
    }

    /// What the transition does to each account: collateral (deposits,
    /// withdrawals, a trade's price and fees), position sizes, and the
    /// order each party fills; `a`'s key and nonce.
    fn deltas(&self, ctx: &mut Context<Fr>, f: &Fields, grp: &Groups, ind: &Indicators, has_key: V) -> [Deltas; 2] {
        let g = self.chips.gate();
        let one6 = Constant(Fr::from(Fx6::ONE as u64));
        let xp = g.mul(ctx, f.x, f.price);
        let x6 = g.mul(ctx, f.x, one6);
        let fee_a = g.mul(ctx, f.fee_a, one6);
        let fee_b = g.mul(ctx, f.fee_b, one6);
        let dep_sign = g.sub(ctx, f.is(Kind::Deposit), f.is(Kind::Withdraw));
        let paid_a = g.add(ctx, xp, fee_a);
        let paid_a = g.mul(ctx, paid_a, grp.trade_like);
        let a_coll = g.mul(ctx, x6, dep_sign);
        let a_coll = g.sub(ctx, a_coll, paid_a);
        let got_b = g.sub(ctx, xp, fee_b);
        let b_coll = g.mul(ctx, got_b, grp.trade_like);
        let x_perp = g.mul(ctx, f.x, grp.perp_trade);
        let x_opt = g.mul(ctx, f.x, f.is(Kind::OptionTrade));
        let a_size: Vec<V> = ind.market.iter().map(|i| g.mul(ctx, x_perp, *i)).collect();
        let b_size: Vec<V> = a_size.iter().map(|v| g.neg(ctx, *v)).collect();
        let neg_x = g.neg(ctx, f.x);
        let a_opt: Vec<V> = ind.series.iter().map(|i| g.mul(ctx, x_opt, *i)).collect();
        let b_opt: Vec<V> = a_opt.iter().map(|v| g.neg(ctx, *v)).collect();
        let auth = Auth {
            signed: grp.signed,
            nonce: f.nonce,
            deposit: f.is(Kind::Deposit),
            set_key: f.is(Kind::SetKey),
            key: f.key,
            has_key,
        };
        [
            Deltas {
                coll: a_coll,
                size: a_size,
                opt: a_opt,
                auth: Some(auth),
                order: OrderCells { on: grp.order_a, terms: f.orders[0], change: f.x, price: f.price, fee: f.fee_a },
                fee6: fee_a,
            },
            Deltas {
                coll: b_coll,
                size: b_size,
                opt: b_opt,
                auth: None,
                order: OrderCells { on: grp.order_b, terms: f.orders[1], change: neg_x, price: f.price, fee: f.fee_b },
                fee6: fee_b,
            },
        ]
    }

    /// Account `a` updated against the slot's accounts root, then `b`
    /// against the root that leaves; tallied as accounts, apart from the
    /// Merkle and orders-tree cells ([`Slots::update`]).
    #[allow(clippy::too_many_arguments)]
    fn accounts(
        &self,
        ctx: &mut Context<Fr>,
        s: &Step,
        root: V,
        f: &Fields,
        grp: &Groups,
        t: &Table,
        [da, db]: [Deltas; 2],
    ) -> (Updated, Updated) {
        let parts = |name| self.chips.parts.borrow().get(name).copied().unwrap_or(0);
        let (merkle_before, orders_before) = (parts("merkle"), parts("orders"));
        let from = ctx.advice.len();
        let depth = self.w.shape.depth;
        let a_pos = self.chips.positions(ctx, f.a, depth);
        let b_pos = self.chips.positions(ctx, f.b, depth);
        let a =
            self.update(ctx, root, &a_pos, &s.a_leaf, &s.a_path, &s.hints.funding_a, &s.orders[0], grp.touch, t, da);
        let b =
            self.update(ctx, a.root, &b_pos, &s.b_leaf, &s.b_path, &s.hints.funding_b, &s.orders[1], grp.touch, t, db);
        let inner = parts("merkle") - merkle_before + parts("orders") - orders_before;
        *self.chips.parts.borrow_mut().entry("accounts (leaves, funding, keys)").or_default() +=
            ctx.advice.len() - from - inner;
        (a, b)
    }

    /// What `a`'s key signs: its withdrawal, key change or order; `b`'s:
    /// its order. Each verified against the key of the account's leaf.
    fn authorize(&self, ctx: &mut Context<Fr>, s: &Step, f: &Fields, grp: &Groups, a: &Updated, b: &Updated) {
        let g = self.chips.gate();
        let e = &s.transition;
        let amount = g.mul_add(ctx, f.x, grp.signed, f.orders[0][0]);
        let zero = ctx.load_zero();
        let [oa, ob] = f.orders;
        let signer_a = g.add(ctx, grp.signed, grp.order_a);
        let message_a =
            [self.tag, f.kind, f.a, f.asset, amount, oa[1], oa[2], oa[3], oa[4], f.key[0], f.key[1], f.nonce];
        let m = self.chips.hash(ctx, Domain::Authorize, &message_a);
        self.verify_signature(ctx, e.signature.as_ref(), a.set.key, m, signer_a);
        let message_b = [self.tag, f.kind, f.b, f.asset, ob[0], ob[1], ob[2], ob[3], ob[4], zero, zero, zero];
        let m = self.chips.hash(ctx, Domain::Authorize, &message_b);
        self.verify_signature(ctx, e.signature_b.as_ref(), b.set.key, m, grp.order_b);
    }

    /// The market table after the slot: an oracle update's marks (from its
    /// quote set), a funding tick's index, open interest from both
    /// accounts' positions, fees into the insurance fund; bounded.
    fn market_table(
        &self,
        ctx: &mut Context<Fr>,
        t: &Table,
        f: &Fields,
        grp: &Groups,
        ind: &Indicators,
        accounts: [&Updated; 2],
    ) -> Table {
        let g = self.chips.gate();
        let shape = &self.w.shape;
        let mut t2 = t.clone();
        let is_price = f.is(Kind::OraclePrice);
        let is_marks = f.is(Kind::OptionMarks);
        let x_fund = g.mul(ctx, f.x, f.is(Kind::FundingTick));
        self.oracle_update(
            ctx,
            t,
            [is_price, is_marks],
            [&ind.market, &ind.series],
            [f.kind, f.asset, f.timestamp],
            [f.price, f.delta, f.gamma, f.vega],
        );
        for m in 0..shape.markets {
            let sel = g.mul(ctx, is_price, ind.market[m]);
            t2.mark[m] = g.select(ctx, f.price, t.mark[m], sel);
            t2.otime[m] = g.select(ctx, f.timestamp, t.otime[m], sel);
            t2.fidx[m] = g.mul_add(ctx, x_fund, ind.market[m], t.fidx[m]);
            self.chips.bound(ctx, t2.fidx[m], fixed::FUNDING_INDEX);
            let mut oi = t.oi[m];
            for acct in accounts {
                let long = g.mul_not(ctx, acct.neg_new[m], acct.new.sizes[m]);
                oi = g.add(ctx, oi, long);
                let long = g.mul_not(ctx, acct.neg_set[m], acct.set.sizes[m]);
                oi = g.sub(ctx, oi, long);
            }
            t2.oi[m] = oi;
            self.chips.bound(ctx, oi, fixed::OPEN_INTEREST);
        }
        for j in 0..shape.series {
            let sel = g.mul(ctx, is_marks, ind.series[j]);
            t2.prem[j] = g.select(ctx, f.price, t.prem[j], sel);
            t2.stime[j] = g.select(ctx, f.timestamp, t.stime[j], sel);
            t2.delta[j] = g.select(ctx, f.delta, t.delta[j], sel);
            t2.gamma[j] = g.select(ctx, f.gamma, t.gamma[j], sel);
            t2.vega[j] = g.select(ctx, f.vega, t.vega[j], sel);
        }
        let fees = g.add(ctx, accounts[0].fee6, accounts[1].fee6);
        t2.fund = g.mul_add(ctx, fees, grp.trade_like, t.fund);
        self.chips.bound(ctx, t2.fund, fixed::FUND);
        t2
    }

    /// The margin rule of the slot's kind for each account, over its risk
    /// before and after (marks and Greeks never change in a step that
    /// touches accounts, so one table serves both).
    #[allow(clippy::too_many_arguments)]
    fn margin_rules(
        &self,
        ctx: &mut Context<Fr>,
        s: &Step,
        t: &Table,
        f: &Fields,
        grp: &Groups,
        a: &Updated,
        b: &Updated,
    ) {
        use Kind::*;
        let g = self.chips.gate();
        let mv = self.moves(ctx, t);
        let hint = &s.hints.risk;
        let a_before = self.risk(ctx, &a.set, &a.neg_set, t, &mv, hint[0]);
        let a_after = self.risk(ctx, &a.new, &a.neg_new, t, &mv, hint[1]);
        let b_before = self.risk(ctx, &b.set, &b.neg_set, t, &mv, hint[2]);
        let b_after = self.risk(ctx, &b.new, &b.neg_new, t, &mv, hint[3]);
        let a_margined = self.well_margined(ctx, &a_after);
        let b_margined = self.well_margined(ctx, &b_after);
        let a_shrinks = self.shrinks(ctx, &a.set, &a.new);
        let b_shrinks = self.shrinks(ctx, &b.set, &b.new);
        let a_reduces = self.risk_reducing(ctx, a_shrinks, &a_before, &a_after);
        let b_reduces = self.risk_reducing(ctx, b_shrinks, &b_before, &b_after);
        let a_liquidatable = self.liquidatable(ctx, &a_before);
        let a_underwater = self.chips.is_neg(ctx, a_before.tv_raw, TV_RAW_BITS);

        // account a: withdrawals keep initial margin; trades keep it or
        // reduce risk; liquidations and deleverages need a liquidatable or
        // underwater account and reduce its risk; the rest are free
        let free_a = self.any_of(ctx, f, &[Noop, Deposit, OraclePrice, OptionMarks, FundingTick, SetKey]);
        let trade_ok = g.or(ctx, a_margined, a_reduces);
        let liquidation_ok = g.and(ctx, a_liquidatable, a_reduces);
        let deleverage_ok = g.and(ctx, a_underwater, a_reduces);
        let ok_a = g.inner_product(
            ctx,
            [f.is(Withdraw), grp.plain_trade, f.is(Liquidate), f.is(Deleverage)],
            [Existing(a_margined), Existing(trade_ok), Existing(liquidation_ok), Existing(deleverage_ok)],
        );
        let ok_a = g.add(ctx, ok_a, free_a);
        self.chips.assert_one(ctx, ok_a);

        // account b: trades as a; the liquidator ends well margined; a
        // deleverage's counterparty only shrinks
        let free_b = g.add(ctx, free_a, f.is(Withdraw));
        let trade_ok = g.or(ctx, b_margined, b_reduces);
        let deleverage_ok = g.and(ctx, b_shrinks, trade_ok);
        let ok_b = g.inner_product(
            ctx,
            [grp.plain_trade, f.is(Liquidate), f.is(Deleverage)],
            [Existing(trade_ok), Existing(b_margined), Existing(deleverage_ok)],
        );
        let ok_b = g.add(ctx, ok_b, free_b);
        self.chips.assert_one(ctx, ok_b);
    }

    /// Deposits and withdrawals move a positive amount, trades a non-zero
    /// size, and trades and prices are non-zero.
    fn parameter_signs(&self, ctx: &mut Context<Fr>, f: &Fields, grp: &Groups) {
        let g = self.chips.gate();
        let x_m1 = g.sub(ctx, f.x, Constant(Fr::one()));
        let x_nonpos = self.chips.is_neg(ctx, x_m1, X.bits + 1);
        let bad = g.mul(ctx, x_nonpos, grp.amount_kind);
        self.chips.assert_zero(ctx, bad);
        let x_zero = g.is_zero(ctx, f.x);
        let bad = g.mul(ctx, x_zero, grp.trade_like);
        self.chips.assert_zero(ctx, bad);
        let priced = g.add(ctx, grp.trade_like, f.is(Kind::OraclePrice));
        let p_zero = g.is_zero(ctx, f.price);
        let bad = g.mul(ctx, p_zero, priced);
        self.chips.assert_zero(ctx, bad);
    }
}
