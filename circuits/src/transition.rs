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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
        /// The taker's signed order (market `market`, kind `trade`).
        taker_order: Order,
        /// The maker's signed order.
        maker_order: Order,
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
        /// The taker's signed order (series `series`, kind `option_trade`).
        taker_order: Order,
        /// The maker's signed order.
        maker_order: Order,
    },
    /// New mark price of a market: the median of the prices its quotes
    /// sign (the lower median for an even count).
    OraclePrice {
        /// Market id.
        market: u32,
        /// Mark price, > 0.
        price: Fx6,
        /// The quotes' timestamp: later than the market's latest update.
        timestamp: u64,
        /// Quotes of at least the chain's quorum of distinct oracles.
        quotes: Vec<PriceQuote>,
    },
    /// New premium and Greeks of a series: each the median of the values
    /// its quotes sign.
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
        /// The quotes' timestamp: later than the series' latest update.
        timestamp: u64,
        /// Quotes of at least the chain's quorum of distinct oracles.
        quotes: Vec<MarksQuote>,
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
        /// The liquidator's signed order (kind `liquidate`): it takes on the
        /// position, so it must ask for it. The liquidated account signs
        /// nothing: the margin rules force the liquidation.
        liquidator_order: Order,
    },
    /// An account with negative total value is closed against a counterparty
    /// holding the opposite position. Nobody signs: the rules force it (the
    /// counterparty's position only shrinks, at a price the sequencer picks
    /// within the margin rules), as in the exchanges' auto-deleveraging.
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

/// An oracle's signed price of a market at a timestamp.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceQuote {
    /// The oracle: an index into the chain's oracle keys.
    pub oracle: u32,
    /// The price it signs.
    pub price: Fx6,
    /// The oracle key's signature of [`oracle_message`] (required; absent
    /// only in tests of the circuit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<Signature>,
}

/// An oracle's signed premium and Greeks of a series at a timestamp.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarksQuote {
    /// The oracle: an index into the chain's oracle keys.
    pub oracle: u32,
    /// Premium.
    pub premium: Fx6,
    /// Delta.
    pub delta: Fx6,
    /// Gamma (12 decimals).
    pub gamma: Fx12,
    /// Vega.
    pub vega: Fx6,
    /// The oracle key's signature of [`oracle_message`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<Signature>,
}

/// A quote in the uniform encoding: `values` are the price (or premium),
/// delta, gamma and vega (raw; zero past the price for `oracle_price`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    /// Oracle index.
    pub oracle: u32,
    /// Signed values.
    pub values: [i128; 4],
    /// Signature.
    pub signature: Option<Signature>,
}

impl PriceQuote {
    /// Oracle `oracle`'s quote of `price` for market `market` at
    /// `timestamp`, signed by `key` for the chain `tag`: what
    /// `statesync sign oracle` prints.
    pub fn signed(key: &SecretKey, tag: Fr, oracle: u32, market: u32, timestamp: u64, price: Fx6) -> Self {
        let m = oracle_message(tag, Kind::OraclePrice, market, timestamp, &[price.raw(), 0, 0, 0]);
        PriceQuote { oracle, price, signature: Some(key.sign(m)) }
    }
}

impl MarksQuote {
    /// Oracle `oracle`'s quote of `values` (premium, delta, gamma, vega,
    /// raw) for series `series` at `timestamp`, signed by `key`.
    pub fn signed(key: &SecretKey, tag: Fr, oracle: u32, series: u32, timestamp: u64, values: [i128; 4]) -> Self {
        let m = oracle_message(tag, Kind::OptionMarks, series, timestamp, &values);
        let [premium, delta, gamma, vega] = values;
        MarksQuote {
            oracle,
            premium: Fixed(premium),
            delta: Fixed(delta),
            gamma: Fixed(gamma),
            vega: Fixed(vega),
            signature: Some(key.sign(m)),
        }
    }
}

/// The lower median: the `⌈n/2⌉`-th smallest (0 for none).
pub fn lower_median(mut values: Vec<i128>) -> i128 {
    values.sort_unstable();
    values.get(values.len().saturating_sub(1) / 2).copied().unwrap_or(0)
}

/// Poseidon(`Oracle`; chain tag, kind, market or series, timestamp, price or
/// premium, delta, gamma, vega): what an oracle's key signs for a quote.
pub fn oracle_message(tag: Fr, kind: Kind, asset: u32, timestamp: u64, values: &[i128; 4]) -> Fr {
    let mut v = vec![tag, fe(kind as i128), fe(asset as i128), fe(timestamp as i128)];
    v.extend(values.iter().map(|x| fe(*x)));
    poseidon::hash(Domain::Oracle, &v)
}

/// Orders per account: an order's id picks its slot (`id mod ORDER_SLOTS`)
/// in the account's orders tree.
pub const ORDER_SLOTS: u64 = 1 << ORDER_BITS;
/// Binary depth of an account's orders tree.
pub const ORDER_BITS: usize = 6;

/// An account's signed order: what it agrees to trade. Each fill of a trade,
/// option trade or liquidation carries the orders of the accounts that take
/// a position; the batch proof checks the signature, the limits and, in the
/// account's orders tree, how much of the order has filled.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Order {
    /// Size limit from the account's side (buy > 0, sell < 0): the most the
    /// order fills over all its fills, and its side.
    pub size: Fx6,
    /// Price limit: a buy fills at or below it, a sell at or above it.
    pub price: Fx6,
    /// The most the order pays in fees over all its fills.
    #[serde(default)]
    pub max_fee: Fx6,
    /// The last batch (its seq) in which the order may fill.
    pub expiry: u64,
    /// The order's id, chosen by the account: slot `id mod 64` of its orders
    /// tree keeps the slot's latest order id, its filled size and its fees;
    /// an order with a higher id in the same slot ends the earlier one.
    pub id: u64,
    /// The account key's signature ([`Encoded::signed_message`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<Signature>,
}

impl Order {
    /// An unsigned order.
    pub fn new(size: Fx6, price: Fx6, max_fee: Fx6, expiry: u64, id: u64) -> Self {
        Order { size, price, max_fee, expiry, id, signature: None }
    }

    /// This order signed by `key`, the key of `account`, for a fill of
    /// `kind` (trade, option_trade, liquidate) on market or series `asset`
    /// of the chain `tag`: what `statesync sign order` prints.
    pub fn signed(self, key: &SecretKey, tag: Fr, kind: Kind, account: u64, asset: u32) -> Self {
        let m = authorize_message(tag, kind, account, asset, &self.terms(), [Fr::zero(); 2], 0);
        Order { signature: Some(key.sign(m)), ..self }
    }

    /// The order's terms, as the uniform encoding carries them.
    pub fn terms(&self) -> OrderTerms {
        OrderTerms {
            size: self.size.raw(),
            price: self.price.raw(),
            max_fee: self.max_fee.raw(),
            expiry: self.expiry,
            id: self.id,
        }
    }
}

/// An order's terms in the uniform encoding (all zero where a kind carries
/// no order).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderTerms {
    /// Size limit (raw, 6 decimals, signed by side).
    pub size: i128,
    /// Price limit (raw).
    pub price: i128,
    /// Fee limit (raw).
    pub max_fee: i128,
    /// Last seq.
    pub expiry: u64,
    /// Order id.
    pub id: u64,
}

impl OrderTerms {
    fn order(&self, signature: Option<Signature>) -> Order {
        Order {
            size: Fixed(self.size),
            price: Fixed(self.price),
            max_fee: Fixed(self.max_fee),
            expiry: self.expiry,
            id: self.id,
            signature,
        }
    }

    /// The slot of the account's orders tree the order fills in.
    pub fn slot(&self) -> u64 {
        self.id % ORDER_SLOTS
    }
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
    /// Whether the kind is an oracle update (it carries quotes).
    pub fn is_oracle(self) -> bool {
        matches!(self, Kind::OraclePrice | Kind::OptionMarks)
    }

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
    /// The orders of `a` (trade and option trade: the taker's) and of `b`
    /// (the maker's, or the liquidator's).
    pub orders: [OrderTerms; 2],
    /// The signature of account `a`'s key (withdraw, set_key, the taker's order).
    pub signature: Option<Signature>,
    /// The signature of account `b`'s key (the maker's or the liquidator's order).
    pub signature_b: Option<Signature>,
    /// The oracle quotes' timestamp (oracle_price, option_marks).
    pub timestamp: u64,
    /// The oracle quotes (carried, not committed: what they sign is).
    pub quotes: Vec<Quote>,
}

/// Why an [`Encoded`] transition is not a transition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid encoded transition: {0}")]
pub struct DecodeError(&'static str);

/// Number of field elements of an encoded transition.
pub const ENCODED_LEN: usize = 25;

/// One of the two accounts of a transition: `a` (0) or `b` (1).
pub type Party = usize;

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
            orders: [OrderTerms::default(); 2],
            signature: None,
            signature_b: None,
            timestamp: 0,
            quotes: vec![],
        }
    }

    /// The values an oracle update sets: price or premium, delta, gamma, vega.
    pub fn values(&self) -> [i128; 4] {
        [self.price, self.delta, self.gamma, self.vega]
    }

    /// What quote `i`'s oracle signs ([`oracle_message`]).
    pub fn quote_message(&self, tag: Fr, i: usize) -> Fr {
        oracle_message(tag, self.kind, self.asset, self.timestamp, &self.quotes[i].values)
    }

    /// The key's coordinates, `(0, 0)` for none (not a point of the curve).
    pub fn key_fields(&self) -> [Fr; 2] {
        key_fields(self.key.as_ref())
    }

    /// Whether the kind is authorized by account `a`'s key at its nonce
    /// (withdraw, set_key): the nonce is incremented.
    pub fn nonce_kind(&self) -> bool {
        matches!(self.kind, Kind::Withdraw | Kind::SetKey)
    }

    /// Whether `party`'s key must sign: `a` for withdrawals, key changes and
    /// the taker's order, `b` for the maker's and the liquidator's order.
    pub fn signer(&self, party: Party) -> bool {
        match party {
            0 => self.nonce_kind() || self.order(0),
            _ => self.order(1),
        }
    }

    /// Whether `party` fills an order: both sides of a trade and an option
    /// trade, the liquidator (`b`) of a liquidation.
    pub fn order(&self, party: Party) -> bool {
        match party {
            0 => matches!(self.kind, Kind::Trade | Kind::OptionTrade),
            _ => matches!(self.kind, Kind::Trade | Kind::OptionTrade | Kind::Liquidate),
        }
    }

    /// The account of `party`.
    pub fn account(&self, party: Party) -> u64 {
        if party == 0 {
            self.a
        } else {
            self.b
        }
    }

    /// The signature of `party`.
    pub fn signature(&self, party: Party) -> Option<&Signature> {
        if party == 0 {
            self.signature.as_ref()
        } else {
            self.signature_b.as_ref()
        }
    }

    /// Sets the signature of `party`.
    pub fn set_signature(&mut self, party: Party, sig: Signature) {
        *(if party == 0 { &mut self.signature } else { &mut self.signature_b }) = Some(sig);
    }

    /// What `party`'s key signs: Poseidon(`Authorize`; chain tag, kind,
    /// account, market or series, amount or order size, price limit, fee
    /// limit, expiry, order id, new key x, y, nonce), zero where the kind
    /// has no such field. The tag keeps a signature to its chain, the kind
    /// to its use, the nonce (withdraw, set_key) and the order's fills in
    /// its slot (orders) to what it allows once.
    pub fn signed_message(&self, tag: Fr, party: Party) -> Fr {
        let o = OrderTerms {
            size: self.orders[party].size + self.x * i128::from(party == 0 && self.nonce_kind()),
            ..self.orders[party]
        };
        let (key, nonce) = if party == 0 { (self.key_fields(), self.nonce) } else { ([Fr::zero(); 2], 0) };
        authorize_message(tag, self.kind, self.account(party), self.asset, &o, key, nonce)
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
            fe(self.orders[0].size),
            fe(self.orders[0].price),
            fe(self.orders[0].max_fee),
            fe(self.orders[0].expiry as i128),
            fe(self.orders[0].id as i128),
            fe(self.orders[1].size),
            fe(self.orders[1].price),
            fe(self.orders[1].max_fee),
            fe(self.orders[1].expiry as i128),
            fe(self.orders[1].id as i128),
            fe(self.timestamp as i128),
        ]
    }

    /// The transition this encodes. Fields a type does not use must be zero
    /// (and `b == a` for deposits and withdrawals), so decoding is the exact
    /// inverse of [`Transition::encode`].
    pub fn decode(&self) -> Result<Transition, DecodeError> {
        let (x, price, fa, fb) = (Fixed(self.x), Fixed(self.price), Fixed(self.fee_a), Fixed(self.fee_b));
        let order_a = || self.orders[0].order(self.signature.clone());
        let order_b = || self.orders[1].order(self.signature_b.clone());
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
                taker_order: order_a(),
                maker_order: order_b(),
            },
            Kind::OptionTrade => Transition::OptionTrade {
                series: self.asset,
                taker: self.a,
                maker: self.b,
                size: x,
                premium: price,
                taker_fee: fa,
                maker_fee: fb,
                taker_order: order_a(),
                maker_order: order_b(),
            },
            Kind::OraclePrice => Transition::OraclePrice {
                market: self.asset,
                price,
                timestamp: self.timestamp,
                quotes: self
                    .quotes
                    .iter()
                    .map(|q| PriceQuote { oracle: q.oracle, price: Fixed(q.values[0]), signature: q.signature.clone() })
                    .collect(),
            },
            Kind::OptionMarks => Transition::OptionMarks {
                series: self.asset,
                premium: price,
                delta: Fixed(self.delta),
                gamma: Fixed(self.gamma),
                vega: Fixed(self.vega),
                timestamp: self.timestamp,
                quotes: self
                    .quotes
                    .iter()
                    .map(|q| MarksQuote {
                        oracle: q.oracle,
                        premium: Fixed(q.values[0]),
                        delta: Fixed(q.values[1]),
                        gamma: Fixed(q.values[2]),
                        vega: Fixed(q.values[3]),
                        signature: q.signature.clone(),
                    })
                    .collect(),
            },
            Kind::FundingTick => Transition::FundingTick { market: self.asset, rate: x },
            Kind::Liquidate => Transition::Liquidate {
                market: self.asset,
                liquidated: self.a,
                liquidator: self.b,
                size: x,
                price,
                fee: fa,
                liquidator_order: order_b(),
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

    fn set_orders(&mut self, a: Option<Order>, b: Order) {
        if let Some(a) = a {
            (self.orders[0], self.signature) = (a.terms(), a.signature);
        }
        (self.orders[1], self.signature_b) = (b.terms(), b.signature);
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
            Transition::Trade { market, taker, maker, size, price, taker_fee, maker_fee, taker_order, maker_order } => {
                (e.a, e.b, e.asset, e.x, e.price) = (taker, maker, market, size.raw(), price.raw());
                (e.fee_a, e.fee_b) = (taker_fee.raw(), maker_fee.raw());
                e.set_orders(Some(taker_order), maker_order);
            }
            Transition::OptionTrade {
                series,
                taker,
                maker,
                size,
                premium,
                taker_fee,
                maker_fee,
                taker_order,
                maker_order,
            } => {
                (e.a, e.b, e.asset, e.x, e.price) = (taker, maker, series, size.raw(), premium.raw());
                (e.fee_a, e.fee_b) = (taker_fee.raw(), maker_fee.raw());
                e.set_orders(Some(taker_order), maker_order);
            }
            Transition::OraclePrice { market, price, timestamp, quotes } => {
                (e.asset, e.price, e.timestamp) = (market, price.raw(), timestamp);
                e.quotes = quotes
                    .into_iter()
                    .map(|q| Quote { oracle: q.oracle, values: [q.price.raw(), 0, 0, 0], signature: q.signature })
                    .collect();
            }
            Transition::OptionMarks { series, premium, delta, gamma, vega, timestamp, quotes } => {
                (e.asset, e.price, e.delta, e.gamma, e.vega, e.timestamp) =
                    (series, premium.raw(), delta.raw(), gamma.raw(), vega.raw(), timestamp);
                e.quotes = quotes
                    .into_iter()
                    .map(|q| Quote {
                        oracle: q.oracle,
                        values: [q.premium.raw(), q.delta.raw(), q.gamma.raw(), q.vega.raw()],
                        signature: q.signature,
                    })
                    .collect();
            }
            Transition::FundingTick { market, rate } => (e.asset, e.x) = (market, rate.raw()),
            Transition::Liquidate { market, liquidated, liquidator, size, price, fee, liquidator_order } => {
                (e.a, e.b, e.asset, e.x, e.price, e.fee_a) =
                    (liquidated, liquidator, market, size.raw(), price.raw(), fee.raw());
                e.set_orders(None, liquidator_order);
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

    /// This transition with every signature it needs made by `key_of` the
    /// signing account (see [`Encoded::signer`]) for the chain `tag`;
    /// signatures of accounts `key_of` has no key for are left as they are.
    pub fn signed_by(self, key_of: impl Fn(u64) -> Option<SecretKey>, tag: Fr) -> Self {
        let mut e = self.encode();
        for party in 0..2 {
            if let (true, Some(key)) = (e.signer(party), key_of(e.account(party))) {
                let sig = key.sign(e.signed_message(tag, party));
                e.set_signature(party, sig);
            }
        }
        e.decode().expect("a transition's encoding decodes")
    }

    /// A new mark of `market` from oracle quotes at `timestamp`: the lower
    /// median of their prices (sign the quotes with [`PriceQuote::signed`]
    /// or [`Transition::quotes_signed_by`]).
    pub fn oracle_price(market: u32, timestamp: u64, quotes: Vec<PriceQuote>) -> Self {
        let price = Fixed(lower_median(quotes.iter().map(|q| q.price.raw()).collect()));
        Transition::OraclePrice { market, price, timestamp, quotes }
    }

    /// New marks of `series` from oracle quotes at `timestamp`: each value
    /// the lower median of the quoted ones.
    pub fn option_marks(series: u32, timestamp: u64, quotes: Vec<MarksQuote>) -> Self {
        let median = |f: fn(&MarksQuote) -> i128| lower_median(quotes.iter().map(f).collect());
        let (premium, delta) = (Fixed(median(|q| q.premium.raw())), Fixed(median(|q| q.delta.raw())));
        let (gamma, vega) = (Fixed(median(|q| q.gamma.raw())), Fixed(median(|q| q.vega.raw())));
        Transition::OptionMarks { series, premium, delta, gamma, vega, timestamp, quotes }
    }

    /// This transition with every oracle quote signed again by `key_of` its
    /// oracle, for the chain `tag` (quotes of oracles `key_of` has no key
    /// for are left as they are).
    pub fn quotes_signed_by(self, key_of: impl Fn(u32) -> Option<SecretKey>, tag: Fr) -> Self {
        let mut e = self.encode();
        for i in 0..e.quotes.len() {
            if let Some(key) = key_of(e.quotes[i].oracle) {
                e.quotes[i].signature = Some(key.sign(e.quote_message(tag, i)));
            }
        }
        e.decode().expect("a transition's encoding decodes")
    }

    /// This transition signed by `key` for the chain `tag`: the signatures
    /// of every account that must sign (a withdrawal's or key change's
    /// account, both sides of a trade) made with the one key.
    pub fn signed(self, key: &SecretKey, tag: Fr) -> Self {
        self.signed_by(|_| Some(key.clone()), tag)
    }
}

/// Poseidon(`Authorize`; chain tag, kind, account, market or series, amount
/// or order size, price limit, fee limit, expiry, order id, key x, y, nonce):
/// [`Encoded::signed_message`].
fn authorize_message(tag: Fr, kind: Kind, account: u64, asset: u32, o: &OrderTerms, key: [Fr; 2], nonce: u64) -> Fr {
    poseidon::hash(
        Domain::Authorize,
        &[
            tag,
            fe(kind as i128),
            fe(account as i128),
            fe(asset as i128),
            fe(o.size),
            fe(o.price),
            fe(o.max_fee),
            fe(o.expiry as i128),
            fe(o.id as i128),
            key[0],
            key[1],
            fe(nonce as i128),
        ],
    )
}

/// A key's coordinates, `(0, 0)` for none.
pub fn key_fields(key: Option<&PublicKey>) -> [Fr; 2] {
    key.map_or([Fr::zero(), Fr::zero()], |k| [k.0.x(), k.0.y()])
}

/// A batch of transitions with its sequence number. `BATCH.json`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    /// Format version ([`BATCH_VERSION`]).
    pub version: u32,
    /// The chain this batch belongs to.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"))]
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

    /// Parses a bincode batch (the layout of [`Batch::to_bincode`]: the
    /// version, the chain id, the seq, then the transitions as [`Encoded`]
    /// records). Every byte must belong to the batch; a malformed one is a
    /// `batch`/`malformed` error that names the piece it stops in and where
    /// that piece starts.
    pub fn from_bincode(bytes: &[u8]) -> Result<Self, BatchError> {
        let mut at = 0usize;
        let version = bincode_piece::<u32>(bytes, &mut at, "the version (u32)")?;
        let chain_id = bincode_piece::<String>(bytes, &mut at, "the chain id (u64 length, then UTF-8)")?;
        let seq = bincode_piece::<u64>(bytes, &mut at, "the seq (u64)")?;
        let count = bincode_piece::<u64>(bytes, &mut at, "the transition count (u64)")?;
        let mut transitions = vec![];
        for i in 0..count {
            let start = at;
            let e = bincode_piece::<Encoded>(bytes, &mut at, &format!("transition {i} (an encoded record)"))?;
            let t = e.decode().map_err(|err| {
                BatchError::batch("malformed", format!("transition {i}, which starts at byte {start}: {err}"))
            })?;
            transitions.push(t);
        }
        if at != bytes.len() {
            let extra = bytes.len() - at;
            return Err(BatchError::batch(
                "malformed",
                format!("{extra} bytes follow the last of the {count} transitions (at byte {at}); a batch ends there"),
            ));
        }
        Ok(Batch { version, chain_id, seq, transitions })
    }

    /// Bincode encoding.
    pub fn to_bincode(&self) -> Vec<u8> {
        bincode::serialize(self).expect("batches always serialize")
    }
}

/// Decodes one `T` of the batch's bincode (the options of bincode's
/// `serialize`: little-endian, fixed-width integers) starting at byte `*at`,
/// and moves `*at` past it. Nothing past the input's length is ever
/// allocated (the limit is the bytes left). `what` names the piece in
/// errors: where it starts, and that the input ends inside it or what is
/// wrong with it.
fn bincode_piece<T: serde::de::DeserializeOwned>(bytes: &[u8], at: &mut usize, what: &str) -> Result<T, BatchError> {
    use bincode::Options;
    let mut rest = &bytes[*at..];
    let options = bincode::DefaultOptions::new().with_fixint_encoding().with_limit(rest.len() as u64);
    let value: T = options.deserialize_from(&mut rest).map_err(|e| {
        // The limit is the bytes left: going past it is running out of input.
        let ended = match *e {
            bincode::ErrorKind::SizeLimit => true,
            bincode::ErrorKind::Io(ref io) => io.kind() == std::io::ErrorKind::UnexpectedEof,
            _ => false,
        };
        let why = if ended {
            format!("the input ends (after {} bytes) inside {what}, which starts at byte {}", bytes.len(), *at)
        } else {
            format!("{what}, which starts at byte {}: {e}", *at)
        };
        BatchError::batch("malformed", why)
    })?;
    *at = bytes.len() - rest.len();
    Ok(value)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::examples;

    #[test]
    fn bincode_takes_exactly_one_batch_and_says_where_it_stops() {
        let batch = examples::batch_valid();
        let bytes = batch.to_bincode();
        assert_eq!(Batch::from_bincode(&bytes).unwrap(), batch);
        // every truncation names the piece it stops in
        let id_end = 4 + 8 + batch.chain_id.len();
        let header = id_end + 16;
        for len in 0..bytes.len() {
            let e = Batch::from_bincode(&bytes[..len]).unwrap_err();
            assert_eq!((e.kind.as_str(), e.rule.as_str()), ("batch", "malformed"));
            let piece = match len {
                _ if len < 4 => "the version",
                _ if len < id_end => "the chain id",
                _ if len < id_end + 8 => "the seq",
                _ if len < header => "the transition count",
                _ => "transition ",
            };
            let expected = format!("the input ends (after {len} bytes) inside {piece}");
            assert!(e.message.starts_with(&expected), "{len}: {}", e.message);
        }
        // nothing may follow the last transition
        let mut longer = bytes.clone();
        longer.push(0);
        let e = Batch::from_bincode(&longer).unwrap_err();
        assert!(e.message.starts_with("1 bytes follow the last of the"), "{}", e.message);
        // a length prefix larger than the input is an end of input, not an allocation
        let mut huge = bytes[..4].to_vec();
        huge.extend(u64::MAX.to_le_bytes());
        let e = Batch::from_bincode(&huge).unwrap_err();
        assert!(e.message.contains("inside the chain id"), "{}", e.message);
        // a bad record names its transition and where it starts
        let mut bad = bytes.clone();
        bad[header] = 0xff; // the first record's kind
        let e = Batch::from_bincode(&bad).unwrap_err();
        assert!(
            e.message.starts_with(&format!("transition 0 (an encoded record), which starts at byte {header}")),
            "{}",
            e.message
        );
    }
}
