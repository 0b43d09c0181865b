//! Helpers shared by the crate's tests.

use crate::{
    fixed::{Fixed, Fx6},
    transition::Transition,
};

/// A 6-decimal value from its decimal string.
pub fn fx(s: &str) -> Fx6 {
    s.parse().expect("test decimals are valid")
}

/// A fee-less perp trade.
pub fn trade(market: u32, taker: u64, maker: u64, size: &str, price: &str) -> Transition {
    Transition::Trade {
        market,
        taker,
        maker,
        size: fx(size),
        price: fx(price),
        taker_fee: Fixed(0),
        maker_fee: Fixed(0),
    }
}
