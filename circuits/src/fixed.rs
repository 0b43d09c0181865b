//! The one fixed-point format of statesync.
//!
//! Every decimal on the wire is a [`Fixed<D>`]: a signed integer `raw` meaning
//! `raw / 10^D`, written in JSON as a decimal string (`"64250.25"`) and in
//! bincode as the raw `i128`. Parsing never rounds: a string with more than `D`
//! fractional digits is an error.
//!
//! Scales in use (`D`):
//! * 6 — sizes, prices, premiums, amounts, fees, margin fractions, funding
//!   rates and indices, delta, vega, price and vol shocks ([`Fx6`]);
//! * 12 — collateral and the insurance fund (a size times a price lands exactly
//!   on this scale, so trades and funding never round), and gamma ([`Fx12`]).
//!
//! Arithmetic is exact: products are carried at the scale they land on and
//! lifted by powers of ten to a common scale before they are compared
//! (see [`crate::margin`]). Nothing is ever divided, so nothing is rounded.
//! Every value has an explicit bound ([`Bound`]) that the engine checks and the
//! circuit range-checks, so no intermediate value can wrap the BN254 field.

use std::{fmt, marker::PhantomData, str::FromStr};

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

/// A signed fixed-point number with `D` decimals.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Fixed<const D: u32>(pub i128);

/// Six decimals: sizes, prices, amounts, fractions, delta, vega, shocks.
pub type Fx6 = Fixed<6>;
/// Twelve decimals: collateral, insurance fund, gamma.
pub type Fx12 = Fixed<12>;

impl<const D: u32> Fixed<D> {
    /// `10^D`.
    pub const ONE: i128 = 10i128.pow(D);
    /// Zero.
    pub const ZERO: Self = Fixed(0);

    /// From a whole number of units.
    pub fn from_int(units: i64) -> Self {
        Fixed(units as i128 * Self::ONE)
    }
    /// The raw integer.
    pub fn raw(self) -> i128 {
        self.0
    }
}

/// Error parsing a decimal string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid decimal {input:?}: {reason}")]
pub struct ParseFixedError {
    input: String,
    reason: &'static str,
}

impl<const D: u32> FromStr for Fixed<D> {
    type Err = ParseFixedError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| ParseFixedError { input: s.to_string(), reason };
        let (neg, body) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s.strip_prefix('+').unwrap_or(s)),
        };
        let (int, frac) = match body.split_once('.') {
            Some((i, f)) => (i, f),
            None => (body, ""),
        };
        if int.is_empty() && frac.is_empty() {
            return Err(err("no digits"));
        }
        if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
            return Err(err("only digits, one '.' and a leading sign are allowed"));
        }
        if frac.len() > D as usize {
            return Err(err("too many decimal places for this field"));
        }
        // Every i128 has at most 39 digits; longer is refused before parsing.
        if int.len() > 39 {
            return Err(err("too many digits"));
        }
        let too_large = || err("outside the 128-bit range");
        let int_v: u128 = if int.is_empty() { 0 } else { int.parse().map_err(|_| too_large())? };
        let frac_v: u128 = if frac.is_empty() { 0 } else { frac.parse().map_err(|_| too_large())? };
        let magnitude = int_v
            .checked_mul(Self::ONE as u128)
            .and_then(|v| v.checked_add(frac_v * 10u128.pow(D - frac.len() as u32)))
            .ok_or_else(too_large)?;
        let raw = if neg { 0i128.checked_sub_unsigned(magnitude) } else { i128::try_from(magnitude).ok() };
        raw.map(Fixed).ok_or_else(too_large)
    }
}

impl<const D: u32> fmt::Display for Fixed<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let one = Self::ONE as u128;
        let (int, frac) = (abs / one, abs % one);
        if frac == 0 {
            return write!(f, "{sign}{int}");
        }
        let digits = format!("{frac:0width$}", width = D as usize);
        write!(f, "{sign}{int}.{}", digits.trim_end_matches('0'))
    }
}

impl<const D: u32> fmt::Debug for Fixed<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl<const D: u32> Serialize for Fixed<D> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            s.serialize_i128(self.0)
        }
    }
}

struct FixedVisitor<const D: u32>(PhantomData<()>);

impl<const D: u32> de::Visitor<'_> for FixedVisitor<D> {
    type Value = Fixed<D>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a decimal string with at most {D} decimals, e.g. \"64250.25\"")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        v.parse().map_err(E::custom)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        (v as i128).checked_mul(Fixed::<D>::ONE).map(Fixed).ok_or_else(|| E::custom("too large"))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        (v as i128).checked_mul(Fixed::<D>::ONE).map(Fixed).ok_or_else(|| E::custom("too large"))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Self::Value, E> {
        Ok(Fixed(v))
    }
}

impl<'de, const D: u32> Deserialize<'de> for Fixed<D> {
    fn deserialize<De: Deserializer<'de>>(d: De) -> Result<Self, De::Error> {
        if d.is_human_readable() {
            d.deserialize_any(FixedVisitor::<D>(PhantomData))
        } else {
            d.deserialize_i128(FixedVisitor::<D>(PhantomData))
        }
    }
}

/// An inclusive-exclusive bound on a raw value: `min <= raw < max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    /// Name used in error messages.
    pub name: &'static str,
    /// Smallest allowed raw value.
    pub min: i128,
    /// One past the largest allowed raw value.
    pub max: i128,
    /// Bits the circuit range-checks `raw - min` to: the smallest with
    /// `max - min <= 2^bits`; when `max - min < 2^bits` the circuit also
    /// range-checks `max - 1 - raw`, so it enforces exactly `[min, max)`.
    pub bits: usize,
}

impl Bound {
    const fn signed(name: &'static str, bits: usize) -> Self {
        Bound { name, min: -(1i128 << (bits - 1)), max: 1i128 << (bits - 1), bits }
    }
    const fn unsigned(name: &'static str, bits: usize) -> Self {
        Bound { name, min: 0, max: 1i128 << bits, bits }
    }
    /// The bound as a range of raw values, powers of two written as such:
    /// `0 <= raw < 2^64`.
    pub fn range(&self) -> String {
        fn power(v: i128) -> String {
            match v.unsigned_abs() {
                m if m.is_power_of_two() && m > 1024 => {
                    format!("{}2^{}", if v < 0 { "-" } else { "" }, m.trailing_zeros())
                }
                _ => v.to_string(),
            }
        }
        format!("{} <= raw < {}", power(self.min), power(self.max))
    }

    /// Whether `raw` is inside the bound.
    pub fn contains(&self, raw: i128) -> bool {
        self.min <= raw && raw < self.max
    }
}

/// Position and trade sizes (6 decimals): |size| < 2^48.
pub const SIZE: Bound = Bound::signed("size", 49);
/// Prices, marks, premiums (6 decimals): 0 <= price < 2^48.
pub const PRICE: Bound = Bound::unsigned("price", 48);
/// Deposit, withdraw and fee amounts (6 decimals): 0 <= amount < 2^64.
pub const AMOUNT: Bound = Bound::unsigned("amount", 64);
/// Collateral (12 decimals): |collateral| < 2^100.
pub const COLLATERAL: Bound = Bound::signed("collateral", 101);
/// Insurance fund (12 decimals): |fund| < 2^120.
pub const FUND: Bound = Bound::signed("insurance_fund", 121);
/// Funding indices (6 decimals): |index| < 2^64.
pub const FUNDING_INDEX: Bound = Bound::signed("funding_index", 65);
/// Funding rate of one tick (6 decimals): |rate| < 2^48.
pub const FUNDING_RATE: Bound = Bound::signed("funding_rate", 49);
/// A market's largest funding rate of one tick (6 decimals): 0 <= rate < 2^48.
pub const MAX_FUNDING_RATE: Bound = Bound::unsigned("max_funding_rate", 48);
/// Open interest (6 decimals): 0 <= oi < 2^64.
pub const OPEN_INTEREST: Bound = Bound::unsigned("open_interest", 64);
/// Margin fractions (6 decimals): 0 <= f < 2^20 (at most 1.048576).
pub const FRACTION: Bound = Bound::unsigned("margin_fraction", 20);
/// Delta (6 decimals): |delta| < 2^32.
pub const DELTA: Bound = Bound::signed("delta", 33);
/// Gamma (12 decimals): |gamma| < 2^40.
pub const GAMMA: Bound = Bound::signed("gamma", 41);
/// Vega (6 decimals): |vega| < 2^48.
pub const VEGA: Bound = Bound::signed("vega", 49);
/// Scenario price shock (6 decimals, a fraction of the mark): |shock| <= 1.
pub const PRICE_SHOCK: Bound = Bound { name: "price_shock", min: -1_000_000, max: 1_000_001, bits: 21 };
/// Scenario vol shock (6 decimals, vol points): |shock| < 2^32.
pub const VOL_SHOCK: Bound = Bound::signed("vol_shock", 33);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_prints() {
        assert_eq!("64250.25".parse::<Fx6>().unwrap().raw(), 64_250_250_000);
        assert_eq!("-0.5".parse::<Fx6>().unwrap().raw(), -500_000);
        assert_eq!(".5".parse::<Fx6>().unwrap().raw(), 500_000);
        assert_eq!("7".parse::<Fx12>().unwrap().raw(), 7_000_000_000_000);
        assert_eq!(Fx6::from_int(3).to_string(), "3");
        assert_eq!(Fixed::<6>(-1_500_000).to_string(), "-1.5");
        assert!("1.0000001".parse::<Fx6>().is_err(), "never rounds");
        // every raw value prints and reads back, the extremes included
        for raw in [i128::MIN, i128::MIN + 1, -1, 0, 1, i128::MAX] {
            assert_eq!(Fixed::<6>(raw).to_string().parse::<Fx6>().unwrap().raw(), raw, "{raw}");
            assert_eq!(Fixed::<12>(raw).to_string().parse::<Fx12>().unwrap().raw(), raw, "{raw}");
        }
        let max = Fixed::<6>(i128::MAX).to_string();
        assert!(format!("{max}1").parse::<Fx6>().is_err(), "one digit more overflows");
        assert!(format!("{}", u128::MAX).parse::<Fixed<0>>().is_err(), "over i128::MAX");
        assert!("1".repeat(40).parse::<Fx6>().is_err(), "too many digits");
        for bad in ["", "-", ".", "1e5", "1.2.3", "--1", "١"] {
            assert!(bad.parse::<Fx6>().is_err(), "{bad:?} must be rejected");
        }
    }

    #[test]
    fn serde_json_and_bincode() {
        let v: Vec<Fx6> = serde_json::from_str(r#"["1.25", 2, "-3"]"#).unwrap();
        assert_eq!(v, vec![Fixed(1_250_000), Fixed(2_000_000), Fixed(-3_000_000)]);
        assert_eq!(serde_json::to_string(&v).unwrap(), r#"["1.25","2","-3"]"#);
        let b = bincode::serialize(&v).unwrap();
        assert_eq!(bincode::deserialize::<Vec<Fx6>>(&b).unwrap(), v);
    }

    #[test]
    fn every_bound_satisfies_its_rule() {
        let all = [
            SIZE,
            PRICE,
            AMOUNT,
            COLLATERAL,
            FUND,
            FUNDING_INDEX,
            FUNDING_RATE,
            MAX_FUNDING_RATE,
            OPEN_INTEREST,
            FRACTION,
            DELTA,
            GAMMA,
            VEGA,
            PRICE_SHOCK,
            VOL_SHOCK,
            crate::engine::X,
        ];
        for b in all {
            let width = b.max - b.min;
            assert!(width <= 1i128 << b.bits && width > 1i128 << (b.bits - 1), "{b:?}");
            assert!(b.contains(b.min) && b.contains(b.max - 1) && !b.contains(b.max) && !b.contains(b.min - 1));
        }
    }

    proptest! {
        #[test]
        fn display_round_trips(raw in any::<i128>()) {
            let x = Fixed::<6>(raw);
            prop_assert_eq!(x.to_string().parse::<Fx6>().unwrap(), x);
        }
    }
}
