//! Transition builders for tests: this crate's own, and (feature
//! `testutil`, through statesync-testkit) every other crate's.

use std::sync::atomic::{AtomicU64, Ordering};

use halo2_base::halo2_proofs::halo2curves::bn256::Fr;

use crate::{
    engine::{self, Applied, Mode},
    error::BatchError,
    examples,
    fixed::{Fixed, Fx6},
    state::ChainState,
    transition::{MarksQuote, Order, PriceQuote, Transition},
};

/// A 6-decimal value from its decimal string.
pub fn fx(s: &str) -> Fx6 {
    s.parse().expect("test decimals are valid")
}

/// An unsigned order for exactly `size` at `price`, any fee, never
/// expiring, with a fresh id (ids only grow, so it never meets a later
/// order in its slot).
pub fn order(size: Fx6, price: Fx6) -> Order {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    Order::new(size, price, Fixed(1 << 62), u64::MAX, NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A fee-less perp trade with matching unsigned orders.
pub fn trade(market: u32, taker: u64, maker: u64, size: &str, price: &str) -> Transition {
    let (size, price) = (fx(size), fx(price));
    Transition::Trade {
        market,
        taker,
        maker,
        size,
        price,
        taker_fee: Fixed(0),
        maker_fee: Fixed(0),
        taker_order: order(size, price),
        maker_order: order(Fixed(-size.raw()), price),
    }
}

/// A fee-less option trade with matching unsigned orders.
pub fn option_trade(series: u32, taker: u64, maker: u64, size: Fx6, premium: Fx6) -> Transition {
    Transition::OptionTrade {
        series,
        taker,
        maker,
        size,
        premium,
        taker_fee: Fixed(0),
        maker_fee: Fixed(0),
        taker_order: order(size, premium),
        maker_order: order(Fixed(-size.raw()), premium),
    }
}

/// Account 4 buys BTC-PERP from account 2 on its order `taker`, paying
/// `fee` (the maker's unsigned order matches the fill).
pub fn fill(size: &str, price: &str, fee: &str, taker: &Order) -> Transition {
    Transition::Trade {
        market: 0,
        taker: 4,
        maker: 2,
        size: fx(size),
        price: fx(price),
        taker_fee: fx(fee),
        maker_fee: Fixed(0),
        taker_order: taker.clone(),
        maker_order: order(Fixed(-fx(size).raw()), fx(price)),
    }
}

/// A liquidation with the liquidator's matching unsigned order.
pub fn liquidate(market: u32, liquidated: u64, liquidator: u64, size: &str, price: &str, fee: Fx6) -> Transition {
    let (size, price) = (fx(size), fx(price));
    Transition::Liquidate {
        market,
        liquidated,
        liquidator,
        size,
        price,
        fee,
        liquidator_order: order(Fixed(-size.raw()), price),
    }
}

/// A fresh oracle timestamp (they only grow, so an update is never stale).
fn timestamp() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A new mark of `market`, quoted at that price by example oracles 0 and 1
/// (the example chain's quorum), unsigned.
pub fn price(market: u32, price: Fx6) -> Transition {
    let quotes = (0..2).map(|oracle| PriceQuote { oracle, price, signature: None }).collect();
    Transition::OraclePrice { market, price, timestamp: timestamp(), quotes }
}

/// New marks of `series` (premium, delta, gamma and vega, raw), quoted by
/// example oracles 0 and 1, unsigned.
pub fn marks(series: u32, values: [i128; 4]) -> Transition {
    let [premium, delta, gamma, vega] = values;
    let (premium, delta, gamma, vega) = (Fixed(premium), Fixed(delta), Fixed(gamma), Fixed(vega));
    let quotes = (0..2).map(|oracle| MarksQuote { oracle, premium, delta, gamma, vega, signature: None }).collect();
    Transition::OptionMarks { series, premium, delta, gamma, vega, timestamp: timestamp(), quotes }
}

/// `ts` with every order and quote signature that is missing made by the
/// example key of its account or oracle ([`examples::secret`],
/// [`examples::oracle_secret`]) for the chain `tag`.
pub fn sign_missing(tag: Fr, ts: &[Transition]) -> Vec<Transition> {
    ts.iter()
        .map(|t| {
            let mut e = t.encode();
            for party in 0..2 {
                if e.order(party) && e.signature(party).is_none() {
                    let sig = examples::secret(e.account(party)).sign(e.signed_message(tag, party));
                    e.set_signature(party, sig);
                }
            }
            for i in 0..e.quotes.len() {
                if e.quotes[i].signature.is_none() {
                    let sig = examples::oracle_secret(e.quotes[i].oracle).sign(e.quote_message(tag, i));
                    e.quotes[i].signature = Some(sig);
                }
            }
            e.decode().expect("an encoding decodes")
        })
        .collect()
}

/// [`engine::apply_transitions`] with the orders and quotes signed ([`sign_missing`]).
pub fn apply(st: &ChainState, ts: &[Transition], mode: Mode) -> Result<Applied, BatchError> {
    engine::apply_transitions(st, &sign_missing(st.tag, ts), mode)
}
