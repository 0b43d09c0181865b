//! Transitions and batches (the `BATCH.json` wire format, also bincode).

use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use serde::{Deserialize, Serialize};

use crate::{
    eddsa::{PublicKey, SecretKey, Signature},
    error::BatchError,
    fixed::{Fixed, Fx12, Fx6},
    poseidon::{self, Domain},
    state::fe,
};

/// Version of the batch format this build reads and writes.
pub const BATCH_VERSION: u32 = 1;

/// One state transition. JSON: `{"type": "trade", ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Transition {
    /// Credit `amount` of collateral to `account`. The first deposit to an
    /// account without a key may set its key (nobody else can sign for it
    /// yet); a deposit never changes a key that is set.
    Deposit {
        /// Account id.
        account: u64,
        /// Amount, > 0.
        amount: Fx6,
        /// The account's public key, for an account that has none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<PublicKey>,
    },
    /// Debit `amount`; the account must stay well margined (initial margin).
    /// Signed with the account's key over [`Encoded::signed_message`]; the
    /// nonce is the account's, which the withdrawal increments, so a signed
    /// withdrawal is applied at most once.
    Withdraw {
        /// Account id.
        account: u64,
        /// Amount, > 0.
        amount: Fx6,
        /// The account's nonce (its leaf's value before this transition).
        nonce: u64,
        /// The account key's signature (required; absent only in tests of the circuit).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature: Option<Signature>,
    },
    /// Perp trade: the taker's position changes by `size`, the maker's by `-size`,
    /// at `price`; each pays its fee into the insurance fund.
    Trade {
        /// Market id.
        market: u32,
        /// Taker account.
        taker: u64,
        /// Maker account.
        maker: u64,
        /// Signed size from the taker's side (buy > 0), non-zero.
        size: Fx6,
        /// Price, > 0.
        price: Fx6,
        /// Taker fee (quote), >= 0.
        #[serde(default)]
        taker_fee: Fx6,
        /// Maker fee (quote), >= 0.
        #[serde(default)]
        maker_fee: Fx6,
    },
    /// Option trade on a series at a premium, same conventions as `trade`.
    OptionTrade {
        /// Series id.
        series: u32,
        /// Taker account.
        taker: u64,
        /// Maker account.
        maker: u64,
        /// Signed size from the taker's side, non-zero.
        size: Fx6,
        /// Premium per unit, > 0.
        premium: Fx6,
        /// Taker fee, >= 0.
        #[serde(default)]
        taker_fee: Fx6,
        /// Maker fee, >= 0.
        #[serde(default)]
        maker_fee: Fx6,
    },
    /// New mark price of a market.
    OraclePrice {
        /// Market id.
        market: u32,
        /// Mark price, > 0.
        price: Fx6,
    },
    /// New premium and Greeks of a series.
    OptionMarks {
        /// Series id.
        series: u32,
        /// Mark premium, >= 0.
        premium: Fx6,
        /// Delta.
        delta: Fx6,
        /// Gamma (12 decimals).
        gamma: Fx12,
        /// Vega (quote per vol point).
        vega: Fx6,
    },
    /// Adds `rate` to the market's funding index (longs pay when positive).
    FundingTick {
        /// Market id.
        market: u32,
        /// Funding per unit of size for this tick.
        rate: Fx6,
    },
    /// The liquidator takes over part of a liquidatable account's position.
    Liquidate {
        /// Market id.
        market: u32,
        /// Liquidatable account.
        liquidated: u64,
        /// Liquidator (must end well margined).
        liquidator: u64,
        /// Change of the liquidated position (must shrink it, never flip it).
        size: Fx6,
        /// Price, > 0.
        price: Fx6,
        /// Penalty paid by the liquidated account into the insurance fund, >= 0.
        #[serde(default)]
        fee: Fx6,
    },
    /// An account with negative total value is closed against a counterparty
    /// holding the opposite position.
    Deleverage {
        /// Market id.
        market: u32,
        /// Account with TV < 0.
        deleveraged: u64,
        /// Counterparty (its position must shrink, never flip).
        counterparty: u64,
        /// Change of the deleveraged position.
        size: Fx6,
        /// Price, > 0.
        price: Fx6,
    },
    /// Replaces the account's key; signed with the current key, with the
    /// account's nonce like a withdrawal.
    SetKey {
        /// Account id.
        account: u64,
        /// The new public key.
        key: PublicKey,
        /// The account's nonce.
        nonce: u64,
        /// The current key's signature.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature: Option<Signature>,
    },
}

/// Numeric codes of the transition types, as committed in the circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[repr(u8)]
pub enum Kind {
    /// Padding.
    Noop = 0,
    /// deposit
    Deposit = 1,
    /// withdraw
    Withdraw = 2,
    /// trade
    Trade = 3,
    /// option_trade
    OptionTrade = 4,
    /// oracle_price
    OraclePrice = 5,
    /// option_marks
    OptionMarks = 6,
    /// funding_tick
    FundingTick = 7,
    /// liquidate
    Liquidate = 8,
    /// deleverage
    Deleverage = 9,
    /// set_key
    SetKey = 10,
}

/// Number of kinds (including `Noop`).
pub const NUM_KINDS: usize = 11;

impl Kind {
    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Noop => "noop",
            Kind::Deposit => "deposit",
            Kind::Withdraw => "withdraw",
            Kind::Trade => "trade",
            Kind::OptionTrade => "option_trade",
            Kind::OraclePrice => "oracle_price",
            Kind::OptionMarks => "option_marks",
            Kind::FundingTick => "funding_tick",
            Kind::Liquidate => "liquidate",
            Kind::Deleverage => "deleverage",
            Kind::SetKey => "set_key",
        }
    }
}

/// The uniform encoding of a transition: what the circuit sees, and the
/// bincode wire form of a transition.
///
/// `a`/`b` are the two touched accounts (equal for one-account transitions,
/// unused for market transitions); `x` is the size, amount or funding rate.
/// The signature is carried, not committed: what it signs is committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Encoded {
    /// Type.
    pub kind: Kind,
    /// First account.
    pub a: u64,
    /// Second account.
    pub b: u64,
    /// Market or series id.
    pub asset: u32,
    /// Size / amount / rate (raw, 6 decimals).
    pub x: i128,
    /// Price / premium (raw, 6 decimals).
    pub price: i128,
    /// Fee paid by `a`.
    pub fee_a: i128,
    /// Fee paid by `b`.
    pub fee_b: i128,
    /// Delta (option_marks).
    pub delta: i128,
    /// Gamma (option_marks, 12 decimals).
    pub gamma: i128,
    /// Vega (option_marks).
    pub vega: i128,
    /// A public key (set_key; deposit to an account without one).
    pub key: Option<PublicKey>,
    /// The account's nonce (withdraw, set_key).
    pub nonce: u64,
    /// The signature of account `a`'s key (withdraw, set_key).
    pub signature: Option<Signature>,
}

/// Why an [`Encoded`] transition is not a transition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid encoded transition: {0}")]
pub struct DecodeError(&'static str);

/// Number of field elements of an encoded transition.
pub const ENCODED_LEN: usize = 14;

impl Encoded {
    /// The padding transition.
    pub fn noop() -> Self {
        Encoded {
            kind: Kind::Noop,
            a: 0,
            b: 0,
            asset: 0,
            x: 0,
            price: 0,
            fee_a: 0,
            fee_b: 0,
            delta: 0,
            gamma: 0,
            vega: 0,
            key: None,
            nonce: 0,
            signature: None,
        }
    }

    /// The key's coordinates, `(0, 0)` for none (not a point of the curve).
    pub fn key_fields(&self) -> [Fr; 2] {
        key_fields(self.key.as_ref())
    }

    /// Whether the kind must be signed by account `a`'s key.
    pub fn signed_kind(&self) -> bool {
        matches!(self.kind, Kind::Withdraw | Kind::SetKey)
    }

    /// What account `a`'s key signs: Poseidon(`Authorize`; chain tag, kind,
    /// account, amount, new key x, y, nonce). The tag keeps a signature to
    /// its chain, the nonce to one use.
    pub fn signed_message(&self, tag: Fr) -> Fr {
        let [kx, ky] = self.key_fields();
        poseidon::hash(
            Domain::Authorize,
            &[tag, fe(self.kind as i128), fe(self.a as i128), fe(self.x), kx, ky, fe(self.nonce as i128)],
        )
    }

    /// Field elements, in the order the circuit commits them.
    pub fn to_fields(&self) -> [Fr; ENCODED_LEN] {
        let [kx, ky] = self.key_fields();
        [
            fe(self.kind as i128),
            fe(self.a as i128),
            fe(self.b as i128),
            fe(self.asset as i128),
            fe(self.x),
            fe(self.price),
            fe(self.fee_a),
            fe(self.fee_b),
            fe(self.delta),
            fe(self.gamma),
            fe(self.vega),
            kx,
            ky,
            fe(self.nonce as i128),
        ]
    }

    /// The transition this encodes. Fields a type does not use must be zero
    /// (and `b == a` for deposits and withdrawals), so decoding is the exact
    /// inverse of [`Transition::encode`].
    pub fn decode(&self) -> Result<Transition, DecodeError> {
        let (x, price, fa, fb) = (Fixed(self.x), Fixed(self.price), Fixed(self.fee_a), Fixed(self.fee_b));
        let t = match self.kind {
            Kind::Noop => return Err(DecodeError("padding is not a transition")),
            Kind::Deposit => Transition::Deposit { account: self.a, amount: x, key: self.key },
            Kind::Withdraw => Transition::Withdraw {
                account: self.a,
                amount: x,
                nonce: self.nonce,
                signature: self.signature.clone(),
            },
            Kind::Trade => Transition::Trade {
                market: self.asset,
                taker: self.a,
                maker: self.b,
                size: x,
                price,
                taker_fee: fa,
                maker_fee: fb,
            },
            Kind::OptionTrade => Transition::OptionTrade {
                series: self.asset,
                taker: self.a,
                maker: self.b,
                size: x,
                premium: price,
                taker_fee: fa,
                maker_fee: fb,
            },
            Kind::OraclePrice => Transition::OraclePrice { market: self.asset, price },
            Kind::OptionMarks => Transition::OptionMarks {
                series: self.asset,
                premium: price,
                delta: Fixed(self.delta),
                gamma: Fixed(self.gamma),
                vega: Fixed(self.vega),
            },
            Kind::FundingTick => Transition::FundingTick { market: self.asset, rate: x },
            Kind::Liquidate => Transition::Liquidate {
                market: self.asset,
                liquidated: self.a,
                liquidator: self.b,
                size: x,
                price,
                fee: fa,
            },
            Kind::Deleverage => {
                Transition::Deleverage { market: self.asset, deleveraged: self.a, counterparty: self.b, size: x, price }
            }
            Kind::SetKey => Transition::SetKey {
                account: self.a,
                key: self.key.ok_or(DecodeError("set_key without a key"))?,
                nonce: self.nonce,
                signature: self.signature.clone(),
            },
        };
        if t.encode() == *self {
            Ok(t)
        } else {
            Err(DecodeError("a field this type does not use is set"))
        }
    }

    /// Whether the transition touches accounts (and settles their funding).
    pub fn touches_accounts(&self) -> bool {
        !matches!(self.kind, Kind::Noop | Kind::OraclePrice | Kind::OptionMarks | Kind::FundingTick)
    }
}

impl Transition {
    /// The type.
    pub fn kind(&self) -> Kind {
        match self {
            Transition::Deposit { .. } => Kind::Deposit,
            Transition::Withdraw { .. } => Kind::Withdraw,
            Transition::Trade { .. } => Kind::Trade,
            Transition::OptionTrade { .. } => Kind::OptionTrade,
            Transition::OraclePrice { .. } => Kind::OraclePrice,
            Transition::OptionMarks { .. } => Kind::OptionMarks,
            Transition::FundingTick { .. } => Kind::FundingTick,
            Transition::Liquidate { .. } => Kind::Liquidate,
            Transition::Deleverage { .. } => Kind::Deleverage,
            Transition::SetKey { .. } => Kind::SetKey,
        }
    }

    /// The uniform encoding.
    pub fn encode(&self) -> Encoded {
        let mut e = Encoded { kind: self.kind(), ..Encoded::noop() };
        match self.clone() {
            Transition::Deposit { account, amount, key } => {
                (e.a, e.b, e.x, e.key) = (account, account, amount.raw(), key);
            }
            Transition::Withdraw { account, amount, nonce, signature } => {
                (e.a, e.b, e.x, e.nonce, e.signature) = (account, account, amount.raw(), nonce, signature);
            }
            Transition::SetKey { account, key, nonce, signature } => {
                (e.a, e.b, e.key, e.nonce, e.signature) = (account, account, Some(key), nonce, signature);
            }
            Transition::Trade { market, taker, maker, size, price, taker_fee, maker_fee } => {
                (e.a, e.b, e.asset, e.x, e.price) = (taker, maker, market, size.raw(), price.raw());
                (e.fee_a, e.fee_b) = (taker_fee.raw(), maker_fee.raw());
            }
            Transition::OptionTrade { series, taker, maker, size, premium, taker_fee, maker_fee } => {
                (e.a, e.b, e.asset, e.x, e.price) = (taker, maker, series, size.raw(), premium.raw());
                (e.fee_a, e.fee_b) = (taker_fee.raw(), maker_fee.raw());
            }
            Transition::OraclePrice { market, price } => (e.asset, e.price) = (market, price.raw()),
            Transition::OptionMarks { series, premium, delta, gamma, vega } => {
                (e.asset, e.price, e.delta, e.gamma, e.vega) =
                    (series, premium.raw(), delta.raw(), gamma.raw(), vega.raw());
            }
            Transition::FundingTick { market, rate } => (e.asset, e.x) = (market, rate.raw()),
            Transition::Liquidate { market, liquidated, liquidator, size, price, fee } => {
                (e.a, e.b, e.asset, e.x, e.price, e.fee_a) =
                    (liquidated, liquidator, market, size.raw(), price.raw(), fee.raw());
            }
            Transition::Deleverage { market, deleveraged, counterparty, size, price } => {
                (e.a, e.b, e.asset, e.x, e.price) = (deleveraged, counterparty, market, size.raw(), price.raw());
            }
        }
        e
    }
}

/// The signed transitions' helpers: what a wallet builds and signs.
impl Transition {
    /// A deposit (no key).
    pub fn deposit(account: u64, amount: Fx6) -> Self {
        Transition::Deposit { account, amount, key: None }
    }

    /// A withdrawal of `account` at `nonce`, signed by `key` for the chain `tag`.
    pub fn withdraw(account: u64, amount: Fx6, nonce: u64, key: &SecretKey, tag: Fr) -> Self {
        Transition::Withdraw { account, amount, nonce, signature: None }.signed(key, tag)
    }

    /// This transition with its signature by `key` for the chain `tag`
    /// (transitions that carry none are returned as they are).
    pub fn signed(mut self, key: &SecretKey, tag: Fr) -> Self {
        let m = self.encode().signed_message(tag);
        if let Transition::Withdraw { signature, .. } | Transition::SetKey { signature, .. } = &mut self {
            *signature = Some(key.sign(m));
        }
        self
    }
}

/// A key's coordinates, `(0, 0)` for none.
pub fn key_fields(key: Option<&PublicKey>) -> [Fr; 2] {
    key.map_or([Fr::zero(), Fr::zero()], |k| [k.0.x(), k.0.y()])
}

/// A batch of transitions with its sequence number. `BATCH.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    /// Format version ([`BATCH_VERSION`]).
    pub version: u32,
    /// The chain this batch belongs to.
    pub chain_id: String,
    /// Sequence number: 0 for the first batch, then consecutive.
    pub seq: u64,
    /// Transitions, applied in order. In bincode each one is its uniform
    /// [`Encoded`] form (bincode cannot carry JSON's `type` tag).
    #[serde(with = "wire")]
    pub transitions: Vec<Transition>,
}

impl Batch {
    /// Parses a JSON batch; malformed input is a `batch`/`malformed` error
    /// carrying serde's location.
    pub fn from_json(text: &str) -> Result<Self, BatchError> {
        serde_json::from_str(text).map_err(|e| BatchError::batch("malformed", e.to_string()))
    }

    /// Parses a bincode batch.
    pub fn from_bincode(bytes: &[u8]) -> Result<Self, BatchError> {
        bincode::deserialize(bytes).map_err(|e| BatchError::batch("malformed", e.to_string()))
    }

    /// Bincode encoding.
    pub fn to_bincode(&self) -> Vec<u8> {
        bincode::serialize(self).expect("batches always serialize")
    }
}

/// Transitions as tagged JSON objects, or as [`Encoded`] in binary formats.
mod wire {
    use serde::{de::Error, Deserialize, Deserializer, Serialize, Serializer};

    use super::{Encoded, Transition};

    pub fn serialize<S: Serializer>(ts: &[Transition], s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            ts.serialize(s)
        } else {
            s.collect_seq(ts.iter().map(Transition::encode))
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Transition>, D::Error> {
        if d.is_human_readable() {
            Vec::<Transition>::deserialize(d)
        } else {
            Vec::<Encoded>::deserialize(d)?.iter().map(|e| e.decode().map_err(D::Error::custom)).collect()
        }
    }
}
