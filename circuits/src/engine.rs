//! The native transition engine: applies a batch atomically, checks every
//! margin rule of DESIGN.md §2 with the circuit's arithmetic
//! ([`crate::margin`]), and records the [`BatchWitness`] the circuit proves.

use halo2_base::halo2_proofs::halo2curves::bn256::Fr;

use crate::{
    config::Shape,
    error::BatchError,
    fixed::{self, Bound, Fixed, Fx6},
    margin::{self, Risk},
    poseidon,
    state::{Account, ChainState, Market, MarketTable, Scenario, Series},
    transition::{Batch, Encoded, Kind, Transition, BATCH_VERSION},
    witness::{BatchWitness, Hints, PublicInputs, Step},
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
    build_witness(state, transitions, mode)
}

/// A witness of padding only, on an all-zero state of `shape`: what keys are
/// generated from (the circuit's layout never depends on witness values).
pub fn padding_witness(shape: &Shape) -> BatchWitness {
    let markets = MarketTable {
        markets: vec![Market::default(); shape.markets],
        series: vec![Series::default(); shape.series],
        scenarios: vec![Scenario::default(); shape.scenarios],
        insurance_fund: Fixed(0),
    };
    let state = ChainState::new(shape.clone(), markets);
    build_witness(&state, &[], Mode::Unchecked).expect("padding always applies").witness
}

fn build_witness(state: &ChainState, transitions: &[Transition], mode: Mode) -> Result<Applied, BatchError> {
    let shape = state.shape().clone();
    let mut st = state.clone();
    let old_root = st.root();
    let markets = st.markets.clone();
    let accounts_root = st.accounts_root();
    let mut steps = Vec::with_capacity(shape.capacity);
    let mut commitment = Fr::zero();
    let mut liquidations = 0;
    for (index, t) in transitions.iter().enumerate() {
        let enc = t.encode();
        steps.push(apply_one(&mut st, &enc, mode).map_err(|(rule, message)| BatchError {
            index: Some(index),
            kind: enc.kind.name().into(),
            rule: rule.into(),
            message,
        })?);
        commitment = commit(commitment, &enc);
        liquidations += u64::from(enc.kind == Kind::Liquidate);
    }
    while steps.len() < shape.capacity {
        steps.push(apply_one(&mut st, &Encoded::noop(), mode).expect("a no-op always applies"));
    }
    st.next_seq += 1;
    let public =
        PublicInputs { old_root, new_root: st.root(), commitment, transitions: transitions.len() as u64, liquidations };
    Ok(Applied { witness: BatchWitness { shape, markets, accounts_root, steps, public }, state: st })
}

/// One link of the batch commitment chain.
pub fn commit(prev: Fr, enc: &Encoded) -> Fr {
    let mut v = vec![prev];
    v.extend(enc.to_fields());
    poseidon::hash(&v)
}

type RuleError = (&'static str, String);

fn bound(b: Bound, raw: i128, what: &str) -> Result<(), RuleError> {
    if b.contains(raw) {
        Ok(())
    } else {
        Err(("bounds", format!("{what} = {raw} (raw) is outside [{}, {}) ({})", b.min, b.max, b.name)))
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
    bound(X, e.x, "size/amount/rate")?;
    bound(fixed::PRICE, e.price, "price")?;
    bound(fixed::AMOUNT, e.fee_a, "fee")?;
    bound(fixed::AMOUNT, e.fee_b, "fee")?;
    bound(fixed::DELTA, e.delta, "delta")?;
    bound(fixed::GAMMA, e.gamma, "gamma")?;
    bound(fixed::VEGA, e.vega, "vega")?;
    if enforce {
        if matches!(k, Kind::Deposit | Kind::Withdraw) && e.x <= 0 {
            return Err(("amount_positive", "amount must be > 0".into()));
        }
        if trade_like && e.x == 0 {
            return Err(("size_nonzero", "size must not be 0".into()));
        }
        if (trade_like || k == Kind::OraclePrice) && e.price <= 0 {
            return Err(("price_positive", "price must be > 0".into()));
        }
    }

    let touches = e.touches_accounts();
    let (ia, ib) = if touches { (e.a, e.b) } else { (0, 0) };
    let mt_before = st.markets.clone();
    let a_leaf = st.account(ia);
    let a_path = st.path(ia);
    let (a_set, funding_a) =
        if touches { settle(&a_leaf, &mt_before) } else { (a_leaf.clone(), vec![0; shape.markets]) };

    let mut a_new = a_set.clone();
    let mut mt = mt_before.clone();
    let kx = e.asset as usize;
    match k {
        Kind::Deposit => a_new.collateral.0 += e.x * Fx6::ONE,
        Kind::Withdraw => a_new.collateral.0 -= e.x * Fx6::ONE,
        Kind::OraclePrice => mt.markets[kx].mark = Fixed(e.price),
        Kind::OptionMarks => {
            let s = &mut mt.series[kx];
            (s.premium, s.delta, s.gamma, s.vega) = (Fixed(e.price), Fixed(e.delta), Fixed(e.gamma), Fixed(e.vega));
        }
        Kind::FundingTick => {
            let m = &mut mt.markets[kx];
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
    let mut b_new = b_set.clone();
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
        kind: k as u8,
        a: ia,
        b: ib,
        asset: e.asset,
        x: e.x,
        price: e.price,
        fee_a: e.fee_a,
        fee_b: e.fee_b,
        delta: e.delta,
        gamma: e.gamma,
        vega: e.vega,
        a_leaf,
        a_path,
        b_leaf,
        b_path,
        hints: Hints { funding_a, funding_b, risk: [ra.0.r, ra.1.r, rb.0.r, rb.1.r] },
    })
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
