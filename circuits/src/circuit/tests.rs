//! MockProver tests of the batch circuit: valid witnesses pass, tampered ones fail.

use std::sync::OnceLock;

use ethnum::I256;
use halo2_base::halo2_proofs::dev::MockProver;

use super::*;
use crate::{
    config::{ChainConfig, Shape},
    engine::{self, Mode, X},
    examples,
    fixed::{self, Fixed},
    state::ChainState,
    testutil::{apply, fx, liquidate, option_trade, price, sign_missing, trade},
    transition::{Encoded, Order, PriceQuote, Transition},
};

fn small_chain(capacity: usize) -> ChainConfig {
    examples::chain_with(capacity, 3)
}

fn params(shape: &Shape) -> BaseCircuitParams {
    static CACHE: OnceLock<std::sync::Mutex<std::collections::HashMap<String, BaseCircuitParams>>> = OnceLock::new();
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
    BatchCircuit { builder: b, hashes: chips.hashes.into_inner().jobs, sigs: vec![], parts: Parts::new(), sets: (0, 0) }
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
    let mut after = apply(&st, std::slice::from_ref(&dep), Mode::Enforce).unwrap().state;
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
            chips.one_hot(ctx, &cells);
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
    let st = state_after(2, &[trade(0, 3, 2, "0.5", "64000"), Transition::FundingTick { market: 0, rate: fx("3") }]);
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
