//! The native transition engine: applies a batch atomically, checks every
//! margin rule of DESIGN.md §2 with the circuit's arithmetic
//! ([`crate::margin`]), and records the [`BatchWitness`] the circuit proves.

use halo2_base::halo2_proofs::halo2curves::bn256::Fr;

use crate::{
    config::Shape,
    error::BatchError,
    fixed::{self, Bound, Fixed, Fx6},
    margin::{self, Risk},
    poseidon::{self, Domain},
    state::{Account, ChainState, Market, MarketTable, OracleTable, OrderFill, Scenario, Series},
    transition::{lower_median, Batch, Encoded, Kind, Party, Transition, BATCH_VERSION},
    witness::{BatchWitness, Hints, OrderSlot, PublicInputs, Step},
};

/// Bound of the generic `x` parameter (sizes, amounts, rates) in the circuit.
pub const X: Bound = Bound { name: "size/amount/rate", min: -(1i128 << 64), max: 1i128 << 64, bits: 65 };

/// Whether margin rules are enforced. `Unchecked` only exists so tests can
/// build witnesses of invalid batches and watch the circuit reject them;
/// structural checks and bounds are enforced either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Enforce every rule (production).
    Enforce,
    /// Skip the margin and sign rules.
    Unchecked,
}

/// The result of applying a batch.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The state after the batch.
    pub state: ChainState,
    /// The witness of the batch circuit.
    pub witness: BatchWitness,
}

/// Applies a batch to a copy of `state`; on any broken rule returns the error
/// and leaves `state` untouched.
pub fn apply_batch(state: &ChainState, chain_id: &str, batch: &Batch) -> Result<Applied, BatchError> {
    if batch.version != BATCH_VERSION {
        return Err(BatchError::batch(
            "version",
            format!("unsupported batch version {} (expected {BATCH_VERSION})", batch.version),
        ));
    }
    if batch.chain_id != chain_id {
        return Err(BatchError::batch(
            "chain_id",
            format!("batch is for chain {:?}, not {chain_id:?}", batch.chain_id),
        ));
    }
    if batch.seq != state.next_seq {
        return Err(BatchError::batch("sequence", format!("expected seq {}, got {}", state.next_seq, batch.seq)));
    }
    apply_transitions(state, &batch.transitions, Mode::Enforce)
}

/// Applies transitions (no envelope checks) in `mode`.
pub fn apply_transitions(state: &ChainState, transitions: &[Transition], mode: Mode) -> Result<Applied, BatchError> {
    let shape = state.shape().clone();
    if transitions.is_empty() {
        return Err(BatchError::batch("empty", "a batch needs at least one transition"));
    }
    if transitions.len() > shape.capacity {
        return Err(BatchError::batch(
            "capacity",
            format!("{} transitions exceed the shape's capacity of {}", transitions.len(), shape.capacity),
        ));
    }
    let updates = transitions.iter().filter(|t| t.kind().is_oracle()).count();
    if updates > shape.oracle_updates {
        return Err(BatchError::batch(
            "capacity",
            format!("{updates} oracle updates exceed the shape's oracle_updates of {}", shape.oracle_updates),
        ));
    }
    let encoded: Vec<Encoded> = transitions.iter().map(Transition::encode).collect();
    build_witness(state, &encoded, mode)
}

/// A witness of padding only, on an all-zero state of `shape`: what keys are
/// generated from (the circuit's layout never depends on witness values).
pub fn padding_witness(shape: &Shape) -> BatchWitness {
    let markets = MarketTable {
        markets: vec![Market::default(); shape.markets],
        series: vec![Series::default(); shape.series],
        scenarios: vec![Scenario::default(); shape.scenarios],
        oracles: OracleTable::new(shape, &[], 0),
        insurance_fund: Fixed(0),
    };
    let state = ChainState::new(shape.clone(), markets, Fr::zero());
    build_witness(&state, &[], Mode::Unchecked).expect("padding always applies").witness
}

/// Applies encoded transitions: [`Transition::encode`]'s outputs, or (tests
/// only) encodings no transition has, to watch the circuit refuse them.
pub(crate) fn build_witness(state: &ChainState, transitions: &[Encoded], mode: Mode) -> Result<Applied, BatchError> {
    let shape = state.shape().clone();
    let mut st = state.clone();
    let old_root = st.root();
    let markets = st.markets.clone();
    let accounts_root = st.accounts_root();
    let mut steps = Vec::with_capacity(shape.capacity);
    let mut commitment = commit_start(st.tag, st.next_seq);
    let seq = st.next_seq;
    let mut liquidations = 0;
    for (index, enc) in transitions.iter().enumerate() {
        steps.push(apply_one(&mut st, enc, mode).map_err(|(rule, message)| BatchError {
            index: Some(index),
            kind: enc.kind.name().into(),
            rule: rule.into(),
            message,
        })?);
        commitment = commit(commitment, enc);
        liquidations += u64::from(enc.kind == Kind::Liquidate);
    }
    while steps.len() < shape.capacity {
        steps.push(apply_one(&mut st, &Encoded::noop(), mode).expect("a no-op always applies"));
    }
    st.next_seq += 1;
    st.rehash();
    let public = PublicInputs {
        old_root,
        new_root: st.root(),
        commitment,
        transitions: transitions.len() as u64,
        liquidations,
        chain_tag: st.tag,
        seq,
    };
    Ok(Applied { witness: BatchWitness { shape, markets, accounts_root, steps, public }, state: st })
}

/// The start of a batch's commitment chain: bound to the chain and the
/// batch's place in its sequence.
pub fn commit_start(tag: Fr, seq: u64) -> Fr {
    poseidon::hash(Domain::CommitStart, &[tag, Fr::from(seq)])
}

/// One link of the batch commitment chain.
pub fn commit(prev: Fr, enc: &Encoded) -> Fr {
    let mut v = vec![prev];
    v.extend(enc.to_fields());
    poseidon::hash(Domain::Commit, &v)
}

type RuleError = (&'static str, String);

/// Checks an oracle update's quotes: at most the shape's oracle slots, each
/// bounded (always: the circuit has no room for more); with the rules on,
/// each signed by its oracle's key (`bad_signature`), at least the quorum of
/// distinct oracles of the chain (`oracle_quorum`), the update's values the
/// lower median of theirs, value by value (`oracle_median`). Returns the
/// latest update's timestamp of the market or series.
fn oracle_quorum(e: &Encoded, mt: &MarketTable, shape: &Shape, tag: Fr, enforce: bool) -> Result<u64, RuleError> {
    let last = match e.kind {
        Kind::OraclePrice => mt.markets[e.asset as usize].oracle_time,
        _ => mt.series[e.asset as usize].oracle_time,
    };
    if e.quotes.len() > shape.oracles {
        return Err((
            "oracle_quorum",
            format!("{} quotes, more than the shape's {} oracle slots", e.quotes.len(), shape.oracles),
        ));
    }
    let bounds = [fixed::PRICE, fixed::DELTA, fixed::GAMMA, fixed::VEGA];
    for q in &e.quotes {
        if q.oracle as usize >= shape.oracles {
            return Err(("oracle_quorum", format!("oracle {} is not one of the chain's", q.oracle)));
        }
        for (v, b) in q.values.iter().zip(bounds) {
            bound(b, *v, "quoted value")?;
        }
    }
    if !enforce {
        return Ok(last);
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, q) in e.quotes.iter().enumerate() {
        let key = mt
            .oracles
            .key(q.oracle)
            .ok_or_else(|| ("oracle_quorum", format!("oracle {} is not one of the chain's", q.oracle)))?;
        let good = q.signature.as_ref().is_some_and(|sig| key.verify(e.quote_message(tag, i), sig));
        if !good {
            return Err(("bad_signature", format!("quote {i} is not signed by oracle {}", q.oracle)));
        }
        if !seen.insert(q.oracle) {
            return Err(("oracle_quorum", format!("two quotes of oracle {}", q.oracle)));
        }
    }
    let quorum = mt.oracles.quorum as usize;
    if quorum == 0 {
        return Err(("oracle_quorum", "the chain has no oracles: its marks never change".into()));
    }
    if e.quotes.len() < quorum {
        return Err((
            "oracle_quorum",
            format!("{} quotes of distinct oracles, the quorum is {quorum}", e.quotes.len()),
        ));
    }
    for (c, name) in ["price", "delta", "gamma", "vega"].iter().enumerate() {
        let median = lower_median(e.quotes.iter().map(|q| q.values[c]).collect());
        if e.values()[c] != median {
            return Err((
                "oracle_median",
                format!("{name} {} (raw) is not the quotes' median, {median}", e.values()[c]),
            ));
        }
    }
    Ok(last)
}

fn bound(b: Bound, raw: i128, what: &str) -> Result<(), RuleError> {
    if b.contains(raw) {
        Ok(())
    } else {
        Err(("bounds", format!("{what} = {raw} (raw) is outside {} ({})", b.range(), b.name)))
    }
}

/// Settles lazy funding: returns the settled account and the payment per market.
fn settle(acct: &Account, mt: &MarketTable) -> (Account, Vec<i128>) {
    let mut out = acct.clone();
    let mut pays = Vec::with_capacity(mt.markets.len());
    for (slot, m) in out.perps.iter_mut().zip(&mt.markets) {
        let pay = (m.funding_index.raw() - slot.funding_index.raw()) * slot.size.raw();
        out.collateral.0 -= pay;
        slot.funding_index = m.funding_index;
        pays.push(pay);
    }
    (out, pays)
}

fn check_account(acct: &Account, who: &str) -> Result<(), RuleError> {
    bound(fixed::COLLATERAL, acct.collateral.raw(), &format!("{who} collateral"))?;
    for p in &acct.perps {
        bound(fixed::SIZE, p.size.raw(), &format!("{who} position size"))?;
    }
    for o in &acct.options {
        bound(fixed::SIZE, o.raw(), &format!("{who} option size"))?;
    }
    Ok(())
}

fn pos(x: Fx6) -> i128 {
    x.raw().max(0)
}

fn apply_one(st: &mut ChainState, e: &Encoded, mode: Mode) -> Result<Step, RuleError> {
    let shape = st.shape().clone();
    let k = e.kind;
    let enforce = mode == Mode::Enforce;
    let perp_kind =
        matches!(k, Kind::Trade | Kind::Liquidate | Kind::Deleverage | Kind::OraclePrice | Kind::FundingTick);
    let series_kind = matches!(k, Kind::OptionTrade | Kind::OptionMarks);
    let two_accounts = matches!(k, Kind::Trade | Kind::OptionTrade | Kind::Liquidate | Kind::Deleverage);
    let trade_like = two_accounts;
    // structure and parameter bounds (what the circuit range-checks)
    if perp_kind && e.asset as usize >= shape.markets {
        return Err(("unknown_market", format!("market {} does not exist ({} markets)", e.asset, shape.markets)));
    }
    if series_kind && e.asset as usize >= shape.series {
        return Err(("unknown_series", format!("series {} does not exist ({} series)", e.asset, shape.series)));
    }
    for id in [e.a, e.b] {
        if shape.depth < 64 && id >= 1u64 << shape.depth {
            return Err(("unknown_account", format!("account {id} is outside a tree of depth {}", shape.depth)));
        }
    }
    if two_accounts && e.a == e.b {
        return Err(("distinct_accounts", format!("account {} cannot trade with itself", e.a)));
    }
    // `x` is an amount or a size: with the rules on, its own bound first, so
    // the message names the field's range; then what the circuit
    // range-checks in every mode.
    let amount_kind = matches!(k, Kind::Deposit | Kind::Withdraw);
    if enforce && amount_kind {
        if e.x <= 0 {
            return Err(("amount_positive", "amount must be > 0".into()));
        }
        bound(fixed::AMOUNT, e.x, "amount")?;
    }
    if enforce && trade_like {
        if e.x == 0 {
            return Err(("size_nonzero", "size must not be 0".into()));
        }
        bound(fixed::SIZE, e.x, "size")?;
    }
    let x_name = match k {
        _ if amount_kind => "amount",
        Kind::FundingTick => "funding rate",
        _ => "size",
    };
    bound(X, e.x, x_name)?;
    bound(fixed::PRICE, e.price, "price")?;
    bound(fixed::AMOUNT, e.fee_a, "fee")?;
    bound(fixed::AMOUNT, e.fee_b, "fee")?;
    bound(fixed::DELTA, e.delta, "delta")?;
    bound(fixed::GAMMA, e.gamma, "gamma")?;
    bound(fixed::VEGA, e.vega, "vega")?;
    if enforce && (trade_like || k == Kind::OraclePrice) && e.price <= 0 {
        return Err(("price_positive", "price must be > 0".into()));
    }

    let touches = e.touches_accounts();
    let (ia, ib) = if touches { (e.a, e.b) } else { (0, 0) };
    let mt_before = st.markets.clone();
    let a_leaf = st.account(ia);
    let a_path = st.path(ia);
    let (a_set, funding_a) =
        if touches { settle(&a_leaf, &mt_before) } else { (a_leaf.clone(), vec![0; shape.markets]) };

    if enforce {
        authorize(e, 0, &a_leaf, st.tag)?;
    }
    let seq = st.next_seq;
    let mut a_new = a_set.clone();
    let a_order = fill_order(e, 0, &mut a_new, seq, enforce)?;
    let mut mt = mt_before.clone();
    let kx = e.asset as usize;
    if e.kind.is_oracle() {
        let last = oracle_quorum(e, &mt_before, &shape, st.tag, enforce)?;
        if enforce && e.timestamp <= last {
            return Err((
                "oracle_stale",
                format!("timestamp {} is not later than the latest update's, {last}", e.timestamp),
            ));
        }
        match k {
            Kind::OraclePrice => mt.markets[kx].oracle_time = e.timestamp,
            _ => mt.series[kx].oracle_time = e.timestamp,
        }
    }
    if e.nonce_kind() {
        a_new.nonce += 1;
    }
    // (a deposit carrying a key to an account that has one is refused
    // above; unchecked, it is applied, so the circuit's own refusal shows)
    if k == Kind::SetKey || (k == Kind::Deposit && e.key.is_some()) {
        a_new.key = e.key;
    }
    match k {
        Kind::Deposit => a_new.collateral.0 += e.x * Fx6::ONE,
        Kind::Withdraw => a_new.collateral.0 -= e.x * Fx6::ONE,
        Kind::OraclePrice => mt.markets[kx].mark = Fixed(e.price),
        Kind::OptionMarks => {
            let s = &mut mt.series[kx];
            (s.premium, s.delta, s.gamma, s.vega) = (Fixed(e.price), Fixed(e.delta), Fixed(e.gamma), Fixed(e.vega));
        }
        Kind::FundingTick => {
            bound(fixed::FUNDING_RATE, e.x, "funding rate")?;
            let m = &mut mt.markets[kx];
            if enforce && e.x.abs() > m.max_funding_rate.raw() {
                return Err((
                    "funding_rate",
                    format!(
                        "the rate {} is beyond the market's max_funding_rate {}",
                        Fixed::<6>(e.x),
                        m.max_funding_rate
                    ),
                ));
            }
            m.funding_index.0 += e.x;
            bound(fixed::FUNDING_INDEX, m.funding_index.raw(), "funding index")?;
        }
        _ => {}
    }
    if trade_like {
        a_new.collateral.0 -= e.x * e.price + e.fee_a * Fx6::ONE;
        if k == Kind::OptionTrade {
            a_new.options[kx].0 += e.x;
        } else {
            a_new.perps[kx].size.0 += e.x;
        }
    }
    check_account(&a_new, "account a")?;
    st.set_account(ia, a_new.clone());

    // account b: read after a was written
    let b_leaf = st.account(ib);
    let b_path = st.path(ib);
    let (b_set, funding_b) =
        if touches { settle(&b_leaf, &mt_before) } else { (b_leaf.clone(), vec![0; shape.markets]) };
    if enforce {
        authorize(e, 1, &b_leaf, st.tag)?;
    }
    let mut b_new = b_set.clone();
    let b_order = fill_order(e, 1, &mut b_new, seq, enforce)?;
    if trade_like {
        b_new.collateral.0 += e.x * e.price - e.fee_b * Fx6::ONE;
        if k == Kind::OptionTrade {
            b_new.options[kx].0 -= e.x;
        } else {
            b_new.perps[kx].size.0 -= e.x;
        }
        mt.insurance_fund.0 += (e.fee_a + e.fee_b) * Fx6::ONE;
    }
    check_account(&b_new, "account b")?;
    bound(fixed::FUND, mt.insurance_fund.raw(), "insurance fund")?;
    for (m, market) in mt.markets.iter_mut().enumerate() {
        let d =
            pos(a_new.perps[m].size) - pos(a_set.perps[m].size) + pos(b_new.perps[m].size) - pos(b_set.perps[m].size);
        market.open_interest.0 += d;
        bound(fixed::OPEN_INTEREST, market.open_interest.raw(), "open interest")?;
    }

    // marks and Greeks never change in a step that touches accounts, so both
    // sides are evaluated against the table before the step (as the circuit does)
    let ra = (margin::evaluate(&a_set, &mt_before), margin::evaluate(&a_new, &mt_before));
    let rb = (margin::evaluate(&b_set, &mt_before), margin::evaluate(&b_new, &mt_before));
    if enforce {
        check_rules(k, (&a_set, &a_new, &ra), (&b_set, &b_new, &rb))?;
    }
    st.set_account(ib, b_new);
    st.markets = mt;
    Ok(Step {
        transition: Encoded { a: ia, b: ib, ..e.clone() },
        a_leaf,
        a_path,
        b_leaf,
        b_path,
        orders: [a_order, b_order],
        hints: Hints { funding_a, funding_b, risk: [ra.0.r, ra.1.r, rb.0.r, rb.1.r] },
    })
}

/// The authorization rules of `party` (its leaf `leaf` before the step):
/// keys set only where none is; what the party must sign signed by its key,
/// at its nonce for withdrawals and key changes.
fn authorize(e: &Encoded, party: Party, leaf: &Account, tag: Fr) -> Result<(), RuleError> {
    let who = e.account(party);
    if e.signer(party) {
        let Some(key) = leaf.key else {
            return Err(("no_key", format!("account {who} has no key, so nothing it signs can be checked")));
        };
        if e.nonce_kind() && e.nonce != leaf.nonce {
            return Err((
                "nonce",
                format!("account {who} is at nonce {}, the transition carries {}", leaf.nonce, e.nonce),
            ));
        }
        let m = e.signed_message(tag, party);
        let sig = e.signature(party);
        if !sig.is_some_and(|sig| key.verify(m, sig)) {
            let what = if sig.is_some() { "does not verify" } else { "is missing" };
            let of = if e.order(party) { "order" } else { "transition" };
            return Err(("bad_signature", format!("the signature of account {who}'s key on its {of} {what}")));
        }
    }
    if let (0, Some(new)) = (party, e.key) {
        if e.kind == Kind::Deposit && leaf.key.is_some() {
            return Err(("key_set", format!("account {who} has a key: only a signed set_key changes it")));
        }
        if !new.usable() {
            return Err((
                "bad_key",
                "the key is not a point of the prime-order subgroup (or is its identity): nothing could sign for it"
                    .into(),
            ));
        }
    }
    Ok(())
}

/// Fills `party`'s order (if the kind carries one) in `acct`'s orders tree
/// and returns the witness of its slot (the leaf and path before the fill);
/// enforced, the order must be live at `seq`, on the fill's side, within its
/// price and fee limits, and not filled past its size.
fn fill_order(e: &Encoded, party: Party, acct: &mut Account, seq: u64, enforce: bool) -> Result<OrderSlot, RuleError> {
    let o = e.orders[party];
    let slot = o.slot();
    let witness = OrderSlot { leaf: acct.orders.get(slot), path: acct.orders.tree().path(slot) };
    if !e.order(party) {
        return Ok(witness);
    }
    bound(fixed::SIZE, o.size, "order size")?;
    bound(fixed::PRICE, o.price, "order price limit")?;
    bound(fixed::AMOUNT, o.max_fee, "order fee limit")?;
    let who = e.account(party);
    let leaf = witness.leaf;
    // the fill from the order's side: positive when on its side
    let fill = if (party == 0) == (o.size >= 0) { e.x } else { -e.x };
    let fee = if party == 0 { e.fee_a } else { e.fee_b };
    let base = if leaf.id == o.id { leaf } else { OrderFill { id: o.id, ..OrderFill::default() } };
    let new = OrderFill { id: o.id, filled: Fixed(base.filled.raw() + fill), fees: Fixed(base.fees.raw() + fee) };
    if enforce {
        let buy = o.size >= 0;
        if seq > o.expiry {
            return Err(("expired", format!("account {who}'s order {} expired after seq {}", o.id, o.expiry)));
        }
        if fill <= 0 {
            return Err(("order_limit", format!("account {who}'s order {} is on the other side of the fill", o.id)));
        }
        if (buy && e.price > o.price) || (!buy && e.price < o.price) {
            let (side, limit) = if buy { ("buy", "above") } else { ("sell", "below") };
            return Err((
                "order_limit",
                format!("the price is {limit} account {who}'s {side} order {}'s limit {}", o.id, Fixed::<6>(o.price)),
            ));
        }
        if new.fees.raw() > o.max_fee {
            return Err((
                "order_limit",
                format!(
                    "account {who}'s order {} would pay {} in fees, past its limit {}",
                    o.id,
                    new.fees,
                    Fixed::<6>(o.max_fee)
                ),
            ));
        }
        if leaf.id > o.id {
            return Err((
                "order_filled",
                format!("slot {slot} of account {who}'s orders holds order {}, later than order {}", leaf.id, o.id),
            ));
        }
        if new.filled.raw() > o.size.abs() {
            return Err((
                "order_filled",
                format!(
                    "account {who}'s order {} would fill {} of its size {}",
                    o.id,
                    new.filled,
                    Fixed::<6>(o.size.abs())
                ),
            ));
        }
    }
    acct.orders.insert(slot, new);
    Ok(witness)
}

type Side<'a> = (&'a Account, &'a Account, &'a (Risk, Risk));

fn check_rules(k: Kind, a: Side<'_>, b: Side<'_>) -> Result<(), RuleError> {
    let ok_or_reduces =
        |(before, after, (rb, ra)): Side<'_>| ra.well_margined() || margin::risk_reducing(before, after, rb, ra);
    let reduces = |(before, after, (rb, ra)): Side<'_>| margin::risk_reducing(before, after, rb, ra);
    match k {
        Kind::Withdraw if !a.2 .1.well_margined() => {
            Err(("initial_margin", "the withdrawal would leave the account below initial margin".into()))
        }
        Kind::Trade | Kind::OptionTrade if !ok_or_reduces(a) => Err((
            "initial_margin",
            "the taker would end below initial margin and the trade does not reduce its risk".into(),
        )),
        Kind::Trade | Kind::OptionTrade if !ok_or_reduces(b) => Err((
            "initial_margin",
            "the maker would end below initial margin and the trade does not reduce its risk".into(),
        )),
        Kind::Liquidate if !a.2 .0.liquidatable() => {
            Err(("not_liquidatable", "the account is above maintenance margin and cannot be liquidated".into()))
        }
        Kind::Liquidate if !reduces(a) => Err((
            "risk_reducing",
            "the liquidation must shrink the position without flipping it and reduce the account's risk".into(),
        )),
        Kind::Liquidate if !b.2 .1.well_margined() => {
            Err(("liquidator_margin", "the liquidator would end below initial margin".into()))
        }
        Kind::Deleverage if !a.2 .0.deleverageable() => {
            Err(("not_deleverageable", "only an account with negative total value can be deleveraged".into()))
        }
        Kind::Deleverage if !reduces(a) => Err((
            "risk_reducing",
            "the deleverage must shrink the position without flipping it and reduce the account's risk".into(),
        )),
        Kind::Deleverage if !margin::positions_shrink(b.0, b.1) => {
            Err(("counterparty_reduces", "the counterparty's position must shrink without flipping".into()))
        }
        Kind::Deleverage if !ok_or_reduces(b) => Err((
            "initial_margin",
            "the counterparty would end below initial margin and its risk does not decrease".into(),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::{
        eddsa::SecretKey,
        examples,
        state::OrderFill,
        testutil::{apply, fill, fx, liquidate, marks, order, price, sign_missing, trade},
        transition::{Order, PriceQuote},
    };

    fn genesis() -> ChainState {
        examples::chain().genesis_state()
    }

    fn after(setup: &[Transition]) -> ChainState {
        apply(&genesis(), setup, Mode::Enforce).expect("setup applies").state
    }

    /// (index, type, rule) of a rejection.
    type Rejection = (Option<usize>, String, String);

    fn rejection(st: &ChainState, ts: &[Transition]) -> Rejection {
        let Err(e) = apply(st, ts, Mode::Enforce) else { panic!("{ts:?} must be rejected") };
        (e.index, e.kind, e.rule)
    }

    #[test]
    fn bound_messages_name_the_fields_own_range() {
        let message = |t: Transition| apply(&genesis(), &[t], Mode::Enforce).unwrap_err().message;
        assert_eq!(
            message(Transition::deposit(1, Fixed(1 << 64))),
            "amount = 18446744073709551616 (raw) is outside 0 <= raw < 2^64 (amount)"
        );
        assert_eq!(
            message(trade(0, 1, 2, "281474976.710656", "1")),
            "size = 281474976710656 (raw) is outside -2^48 <= raw < 2^48 (size)"
        );
    }

    fn r(index: usize, kind: &str, rule: &str) -> Rejection {
        (Some(index), kind.into(), rule.into())
    }

    #[test]
    fn every_rule_names_the_transition() {
        let g = genesis();
        let ok = Transition::deposit(1, fx("1"));
        let cases: Vec<(Vec<Transition>, Rejection)> = vec![
            (vec![ok.clone(), trade(5, 1, 2, "1", "1")], r(1, "trade", "unknown_market")),
            (vec![marks(9, [1_000_000, 0, 0, 0])], r(0, "option_marks", "unknown_series")),
            (vec![Transition::deposit(1 << 20, fx("1"))], r(0, "deposit", "unknown_account")),
            (vec![trade(0, 2, 2, "1", "64000")], r(0, "trade", "distinct_accounts")),
            (vec![Transition::deposit(1, Fixed(1 << 64))], r(0, "deposit", "bounds")),
            (vec![trade(0, 1, 2, "281474976.710656", "1")], r(0, "trade", "bounds")),
            (vec![price(0, Fixed(1 << 48))], r(0, "oracle_price", "bounds")),
            (vec![Transition::deposit(1, fx("0"))], r(0, "deposit", "amount_positive")),
            (vec![ok.clone(), ok.clone(), trade(0, 1, 2, "0", "64000")], r(2, "trade", "size_nonzero")),
            (vec![price(1, fx("0"))], r(0, "oracle_price", "price_positive")),
            (vec![Transition::FundingTick { market: 1, rate: fx("-10.000001") }], r(0, "funding_tick", "funding_rate")),
            (vec![trade(0, 1, 2, "2", "64000")], r(0, "trade", "initial_margin")),
            (vec![trade(0, 2, 1, "2", "64000")], r(0, "trade", "initial_margin")),
            (vec![liquidate(0, 1, 4, "0.1", "64000", Fixed(0))], r(0, "liquidate", "not_liquidatable")),
            (
                vec![Transition::Deleverage {
                    market: 0,
                    deleveraged: 1,
                    counterparty: 2,
                    size: fx("0.1"),
                    price: fx("64000"),
                }],
                r(0, "deleverage", "not_deleverageable"),
            ),
        ];
        for (ts, expect) in cases {
            assert_eq!(rejection(&g, &ts), expect, "{ts:?}");
        }
    }

    /// An update of BTC-PERP to `price` at `timestamp` from `quotes`
    /// (oracle, price), unsigned.
    fn quoted(price: &str, timestamp: u64, quotes: &[(u32, &str)]) -> Transition {
        let quotes = quotes.iter().map(|(oracle, p)| PriceQuote { oracle: *oracle, price: fx(p), signature: None });
        Transition::OraclePrice { market: 0, price: fx(price), timestamp, quotes: quotes.collect() }
    }

    /// The update with every quote signed, then `f` applied to its quotes.
    fn tampered(t: Transition, f: impl FnOnce(&mut Vec<PriceQuote>)) -> Transition {
        let Transition::OraclePrice { market, price, timestamp, mut quotes } =
            sign_missing(genesis().tag, &[t]).remove(0)
        else {
            unreachable!("an oracle price")
        };
        f(&mut quotes);
        Transition::OraclePrice { market, price, timestamp, quotes }
    }

    #[test]
    fn oracle_rules() {
        let g = genesis();
        let honest = [(0, "59990"), (1, "60000"), (2, "60012")];
        let out = apply(&g, &[quoted("60000", 7, &honest)], Mode::Enforce).unwrap();
        assert_eq!((out.state.markets.markets[0].mark, out.state.markets.markets[0].oracle_time), (fx("60000"), 7));
        // an even count takes the lower of the two middle quotes
        apply(&g, &[quoted("60000", 7, &honest[1..])], Mode::Enforce).unwrap();
        let oracle = |i, rule| r(i, "oracle_price", rule);
        let cases: Vec<(Vec<Transition>, Rejection)> = vec![
            (vec![quoted("60000", 7, &honest[1..2])], oracle(0, "oracle_quorum")),
            (vec![quoted("60000", 7, &[(1, "60000"), (1, "60000")])], oracle(0, "oracle_quorum")),
            (vec![quoted("60000", 7, &[(1, "60000"), (3, "60000")])], oracle(0, "oracle_quorum")),
            (
                vec![quoted("60000", 7, &[(0, "1"), (1, "60000"), (2, "60000"), (2, "60000")])],
                oracle(0, "oracle_quorum"),
            ),
            (vec![quoted("60012", 7, &honest)], oracle(0, "oracle_median")),
            (vec![quoted("59990", 7, &honest)], oracle(0, "oracle_median")),
            (vec![quoted("60000", 7, &honest), quoted("60000", 7, &honest)], oracle(1, "oracle_stale")),
            (vec![quoted("60000", 7, &honest), quoted("60000", 6, &honest)], oracle(1, "oracle_stale")),
            // oracle 2's quote signed by oracle 0's key
            (
                vec![tampered(quoted("60000", 7, &honest), |q| q[2].signature = q[0].signature.clone())],
                oracle(0, "bad_signature"),
            ),
            // a real signature over another price
            (vec![tampered(quoted("60000", 7, &honest), |q| q[0].price = fx("59991"))], oracle(0, "bad_signature")),
            (
                vec![quoted("60000", 7, &honest), price(1, fx("3000")), price(0, fx("1")), price(1, fx("2"))],
                (None, "batch".into(), "capacity".into()),
            ),
        ];
        for (ts, expect) in cases {
            assert_eq!(rejection(&g, &ts), expect, "{ts:?}");
        }
        let Err(e) = apply_transitions(&g, &[quoted("60000", 7, &honest)], Mode::Enforce) else {
            panic!("unsigned quotes")
        };
        assert_eq!(e.rule, "bad_signature");
        // a chain without oracles never changes a mark
        let mut cfg = examples::chain();
        cfg.oracles = Default::default();
        assert_eq!(rejection(&cfg.genesis_state(), &[quoted("60000", 7, &[])]), oracle(0, "oracle_quorum"));
    }

    /// Account 3 long 0.5 BTC at 64000 on 5000 collateral, BTC marked at 60000.
    fn underwater() -> ChainState {
        after(&[trade(0, 3, 2, "0.5", "64000"), price(0, fx("60000"))])
    }

    #[test]
    fn liquidation_rules() {
        let st = underwater();
        let liq = |size: &str, liquidator: u64| liquidate(0, 3, liquidator, size, "60000", Fixed(0));
        assert_eq!(rejection(&st, &[liq("-0.6", 4)]), r(0, "liquidate", "risk_reducing"), "flipping is not reducing");
        assert_eq!(rejection(&st, &[liq("0.1", 4)]), r(0, "liquidate", "risk_reducing"), "growing is not reducing");
        assert_eq!(rejection(&st, &[liq("-0.5", 6)]), r(0, "liquidate", "no_key"), "a liquidator without a key");
        let key6 = Some(examples::secret(6).public());
        let keyed = apply(&st, &[Transition::Deposit { account: 6, amount: fx("1"), key: key6 }], Mode::Enforce);
        let mut keyed = keyed.unwrap().state;
        keyed.next_seq = 0;
        assert_eq!(rejection(&keyed, &[liq("-0.5", 6)]), r(0, "liquidate", "liquidator_margin"), "an empty liquidator");
        let unsigned = liq("-0.5", 4);
        let Err(e) = apply_transitions(&st, &[unsigned], Mode::Enforce) else { panic!("an unsigned liquidator order") };
        assert_eq!(e.rule, "bad_signature", "the liquidator must sign");
        let ok = apply(&st, &[liq("-0.5", 4)], Mode::Enforce).unwrap();
        assert_eq!(ok.witness.public.liquidations, 1);
        assert_eq!(ok.state.account(3).perps[0].size, Fixed(0));
        assert_eq!(ok.state.account(4).perps[0].size, fx("0.5"));
    }

    #[test]
    fn deleverage_rules() {
        // account 5 long 2 ETH at 3200 on 1000; ETH to 2600: TV = -200
        let st = after(&[trade(1, 5, 2, "2", "3200"), trade(1, 4, 1, "1", "3200"), price(1, fx("2600"))]);
        let delev = |counterparty: u64, size: &str| Transition::Deleverage {
            market: 1,
            deleveraged: 5,
            counterparty,
            size: fx(size),
            price: fx("2600"),
        };
        assert_eq!(rejection(&st, &[delev(4, "-1")]), r(0, "deleverage", "counterparty_reduces"), "4 is long too");
        assert_eq!(rejection(&st, &[delev(2, "-3")]), r(0, "deleverage", "risk_reducing"));
        apply(&st, &[delev(2, "-2")], Mode::Enforce).unwrap();
        apply(&st, &[delev(1, "-1")], Mode::Enforce).unwrap();
    }

    #[test]
    fn funding_is_settled_when_touched() {
        let st = after(&[trade(0, 3, 2, "0.5", "64000"), Transition::FundingTick { market: 0, rate: fx("4") }]);
        // buying 0.5 at 64000 moved 32000 out of collateral; funding is lazy: nothing paid yet
        assert_eq!(st.account(3).collateral, "-27000".parse().unwrap());
        let out = apply(&st, &[Transition::deposit(3, fx("1"))], Mode::Enforce).unwrap();
        // paid 0.5 * 4 = 2, deposited 1
        assert_eq!(out.state.account(3).collateral, "-27001".parse().unwrap());
        assert_eq!(out.state.account(3).perps[0].funding_index, fx("4"));
        // the short (account 2) receives when touched
        let out = apply(&st, &[Transition::deposit(2, fx("1"))], Mode::Enforce).unwrap();
        assert_eq!(out.state.account(2).collateral, "1032003".parse().unwrap());
    }

    #[test]
    fn batch_envelope_rules() {
        let g = genesis();
        let mut b = examples::batch_valid();
        let id = "perps-devnet-1";
        let rule = |b: &Batch| apply_batch(&g, id, b).unwrap_err().rule;
        b.seq = 1;
        assert_eq!(rule(&b), "sequence");
        b.seq = 0;
        b.version = 2;
        assert_eq!(rule(&b), "version");
        b.version = 1;
        b.chain_id = "x".into();
        assert_eq!(rule(&b), "chain_id");
        b.chain_id = id.into();
        b.transitions.extend(b.transitions.clone());
        assert_eq!(rule(&b), "capacity");
        b.transitions.clear();
        assert_eq!(rule(&b), "empty");
        let err = Batch::from_json(r#"{"version":1,"chain_id":"a","seq":0,"transitions":[{"type":"teleport"}]}"#)
            .unwrap_err();
        assert_eq!((err.index, err.rule.as_str()), (None, "malformed"));
        assert!(err.message.contains("column"), "{}", err.message);
    }

    #[test]
    fn authorization_rules() {
        let g = genesis();
        let (tag, one, key1) = (g.tag, fx("1"), examples::secret(1));
        let withdraw = |account: u64, nonce: u64, key: &SecretKey| Transition::withdraw(account, one, nonce, key, tag);
        // a withdrawal signed by its account's key at its nonce applies once
        let st = apply(&g, &[withdraw(1, 0, &key1)], Mode::Enforce).unwrap().state;
        assert_eq!(st.account(1).nonce, 1);
        assert_eq!(rejection(&st, &[withdraw(1, 0, &key1)]), r(0, "withdraw", "nonce"), "a replay");
        assert_eq!(rejection(&g, &[withdraw(1, 1, &key1)]), r(0, "withdraw", "nonce"), "a nonce ahead");
        apply(&st, &[withdraw(1, 1, &key1)], Mode::Enforce).unwrap();
        // another key, another chain, an altered amount, no signature
        assert_eq!(rejection(&g, &[withdraw(1, 0, &examples::secret(2))]), r(0, "withdraw", "bad_signature"));
        let other_chain = Transition::withdraw(1, one, 0, &key1, tag + Fr::one());
        assert_eq!(rejection(&g, &[other_chain]), r(0, "withdraw", "bad_signature"));
        let Transition::Withdraw { signature, .. } = withdraw(1, 0, &key1) else { unreachable!() };
        let altered = Transition::Withdraw { account: 1, amount: fx("2"), nonce: 0, signature };
        assert_eq!(rejection(&g, &[altered]), r(0, "withdraw", "bad_signature"));
        let unsigned = Transition::Withdraw { account: 1, amount: one, nonce: 0, signature: None };
        assert_eq!(rejection(&g, &[unsigned]), r(0, "withdraw", "bad_signature"));
        // account 6 has no key: nothing it signs is accepted, until a first deposit sets one
        let key6 = examples::secret(6);
        assert_eq!(rejection(&g, &[withdraw(6, 0, &key6)]), r(0, "withdraw", "no_key"));
        let first = Transition::Deposit { account: 6, amount: fx("10"), key: Some(key6.public()) };
        let st = apply(&g, &[first.clone(), withdraw(6, 0, &key6)], Mode::Enforce).unwrap().state;
        assert_eq!(st.account(6).key, Some(key6.public()));
        assert_eq!(rejection(&st, &[first]), r(0, "deposit", "key_set"), "a deposit never replaces a key");
        // set_key: signed by the current key; the old key stops working
        let new = examples::secret(101);
        let set = |nonce: u64, key: &SecretKey| {
            Transition::SetKey { account: 1, key: new.public(), nonce, signature: None }.signed(key, tag)
        };
        assert_eq!(rejection(&g, &[set(0, &new)]), r(0, "set_key", "bad_signature"));
        let st = apply(&g, &[set(0, &key1)], Mode::Enforce).unwrap().state;
        assert_eq!((st.account(1).key, st.account(1).nonce), (Some(new.public()), 1));
        assert_eq!(rejection(&st, &[withdraw(1, 1, &key1)]), r(0, "withdraw", "bad_signature"));
        apply(&st, &[withdraw(1, 1, &new)], Mode::Enforce).unwrap();
        // keys outside the prime-order subgroup are refused
        let small = crate::eddsa::PublicKey(crate::babyjub::Point::new(Fr::zero(), -Fr::one()).unwrap());
        let bad = Transition::SetKey { account: 1, key: small, nonce: 0, signature: None }.signed(&key1, tag);
        assert_eq!(rejection(&g, &[bad]), r(0, "set_key", "bad_key"));
        let bad = Transition::Deposit { account: 6, amount: one, key: Some(small) };
        assert_eq!(rejection(&g, &[bad]), r(0, "deposit", "bad_key"));
    }

    fn taker_order(t: &mut Transition) -> &mut Order {
        let Transition::Trade { taker_order, .. } = t else { unreachable!("a trade") };
        taker_order
    }

    #[test]
    fn order_rules() {
        let g = genesis();
        let tag = g.tag;
        let next = |st: &ChainState, t: Transition| apply(st, &[t], Mode::Enforce).map(|o| o.state);
        // one order of size 1 (limit 64000, fees up to 3, live through seq 2) in two fills across batches
        let buy = Order::new(fx("1"), fx("64000"), fx("3"), 2, 7);
        let st1 = next(&g, fill("0.4", "63990", "1", &buy)).unwrap();
        assert_eq!(st1.account(4).orders.get(7), OrderFill { id: 7, filled: fx("0.4"), fees: fx("1") });
        let st2 = next(&st1, fill("0.6", "64000", "1", &buy)).unwrap();
        assert_eq!(st2.account(4).orders.get(7).filled, fx("1"));
        assert_eq!(rejection(&st2, &[fill("0.1", "64000", "0", &buy)]), r(0, "trade", "order_filled"), "past its size");
        assert_eq!(rejection(&st1, &[fill("0.7", "64000", "0", &buy)]), r(0, "trade", "order_filled"));
        // limits: price, side, fees (over all fills), expiry
        assert_eq!(
            rejection(&g, &[fill("0.1", "64001", "0", &buy)]),
            r(0, "trade", "order_limit"),
            "above a buy limit"
        );
        let sell = Order::new(fx("-1"), fx("64000"), fx("3"), 2, 8);
        assert_eq!(rejection(&g, &[fill("0.1", "64000", "0", &sell)]), r(0, "trade", "order_limit"), "the other side");
        assert_eq!(
            rejection(&g, &[fill("0.1", "64000", "4", &buy)]),
            r(0, "trade", "order_limit"),
            "a fee past the limit"
        );
        assert_eq!(rejection(&st1, &[fill("0.1", "64000", "2.5", &buy)]), r(0, "trade", "order_limit"), "fees add up");
        let mut late = next(&st2, Transition::deposit(1, fx("1"))).unwrap();
        let fresh = Order::new(fx("1"), fx("64000"), fx("3"), 2, 9);
        assert_eq!(rejection(&late, &[fill("0.1", "64000", "0", &fresh)]), r(0, "trade", "expired"));
        late.next_seq = 2;
        next(&late, fill("0.1", "64000", "0", &fresh)).unwrap();
        // a later order in the slot (id 7 + 64) ends order 7
        let later = Order::new(fx("1"), fx("64000"), fx("3"), 2, 7 + 64);
        let st = next(&st1, fill("0.1", "64000", "0", &later)).unwrap();
        assert_eq!(st.account(4).orders.get(7).id, 71);
        assert_eq!(
            rejection(&st, &[fill("0.1", "64000", "0", &buy)]),
            r(0, "trade", "order_filled"),
            "a replaced order"
        );
        // signatures: another key, altered terms after signing, none at all, no key
        let by5 =
            fill("0.1", "64000", "0", &buy).signed_by(|id| Some(examples::secret(if id == 4 { 5 } else { id })), tag);
        assert_eq!(rejection(&g, &[by5]), r(0, "trade", "bad_signature"), "another key");
        for alter in
            [|o: &mut Order| o.price = fx("65000"), |o: &mut Order| o.size = fx("2"), |o: &mut Order| o.expiry = 9]
        {
            let mut t = fill("0.1", "64000", "0", &buy).signed_by(|id| Some(examples::secret(id)), tag);
            alter(taker_order(&mut t));
            assert_eq!(rejection(&g, &[t]), r(0, "trade", "bad_signature"), "terms altered after signing");
        }
        let unsigned = fill("0.1", "64000", "0", &buy);
        let Err(e) = apply_transitions(&g, &[unsigned], Mode::Enforce) else { panic!("unsigned orders") };
        assert_eq!(e.rule, "bad_signature");
        let keyless = trade(0, 4, 6, "0.1", "64000");
        assert_eq!(rejection(&g, &[keyless]), r(0, "trade", "no_key"), "a maker without a key");
    }

    #[test]
    fn bincode_batches_round_trip() {
        let b = examples::batch_valid();
        assert_eq!(Batch::from_bincode(&b.to_bincode()).unwrap(), b);
        assert!(Batch::from_bincode(&[1, 2, 3]).is_err());
    }

    fn arb_transition() -> impl Strategy<Value = Transition> {
        let acct = 1u64..7;
        prop_oneof![
            (acct.clone(), 1i128..5_000).prop_map(|(a, v)| Transition::deposit(a, Fixed(v * 1_000_000))),
            // signed below, at the account's nonce
            (acct.clone(), 1i128..5_000).prop_map(|(a, v)| Transition::Withdraw {
                account: a,
                amount: Fixed(v * 1_000_000),
                nonce: 0,
                signature: None
            }),
            (0u32..2, acct.clone(), acct.clone(), -200i128..200, 90i128..110).prop_map(|(m, a, b, s, p)| {
                let mark = if m == 0 { 64_000 } else { 3_200 };
                let (size, price) = (Fixed(s * 10_000), Fixed(mark * p * 10_000));
                Transition::Trade {
                    market: m,
                    taker: a,
                    maker: b,
                    size,
                    price,
                    taker_fee: Fixed(0),
                    maker_fee: Fixed(100_000),
                    taker_order: order(size, price),
                    maker_order: order(Fixed(-size.raw()), price),
                }
            }),
            (0u32..2, acct.clone(), acct.clone(), -20i128..20).prop_map(|(j, a, b, s)| crate::testutil::option_trade(
                j,
                a,
                b,
                Fixed(s * 100_000),
                Fixed(if j == 0 { 1_500_000_000 } else { 100_000_000 })
            )),
            (0u32..2, 85i128..115)
                .prop_map(|(m, p)| crate::testutil::price(m, Fixed(if m == 0 { 64_000 } else { 3_200 } * p * 10_000))),
            (0u32..2, -50i128..50).prop_map(|(m, r)| Transition::FundingTick { market: m, rate: Fixed(r * 100_000) }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Accepted transitions keep open interest equal to the sum of long
        /// sizes, every withdrawer well margined, and the witness' roots equal
        /// the state's; a rejected batch leaves nothing behind.
        #[test]
        fn accepted_transitions_keep_invariants(ts in proptest::collection::vec(arb_transition(), 1..12)) {
            let mut st = genesis();
            for t in ts {
                let t = match t {
                    Transition::Withdraw { account, amount, .. } => {
                        Transition::withdraw(account, amount, st.account(account).nonce, &examples::secret(account), st.tag)
                    }
                    t => t,
                };
                match apply(&st, std::slice::from_ref(&t), Mode::Enforce) {
                    Ok(out) => {
                        prop_assert_eq!(out.witness.public.old_root, st.root());
                        prop_assert_eq!(out.witness.public.new_root, out.state.root());
                        if let Transition::Withdraw { account, .. } = t {
                            let risk = margin::evaluate(&out.state.account(account), &out.state.markets);
                            prop_assert!(risk.well_margined());
                        }
                        st = out.state;
                        st.next_seq = 0;
                        for (m, market) in st.markets.markets.iter().enumerate() {
                            let longs: i128 = st.accounts().map(|(_, a)| a.perps[m].size.raw().max(0)).sum();
                            prop_assert_eq!(market.open_interest.raw(), longs);
                        }
                    }
                    Err(e) => prop_assert_eq!(e.index, Some(0)),
                }
            }
        }
    }
}
