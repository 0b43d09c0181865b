//! Chain configuration and genesis (the `CHAIN.json` wire format).

use halo2_base::halo2_proofs::halo2curves::{bn256::Fr, ff::PrimeField};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{
    error::ConfigError,
    fixed::{self, Bound, Fixed, Fx12, Fx6},
    state::{Account, ChainState, Market, MarketTable, OracleTable, Scenario, Series},
};

/// Version of the chain config format this build reads and writes.
pub const CONFIG_VERSION: u32 = 1;

/// Largest supported counts (they keep every in-circuit value far from the
/// field modulus; see [`crate::margin`]).
pub const MAX_MARKETS: usize = 16;
/// Largest number of option series.
pub const MAX_SERIES: usize = 16;
/// Largest number of scenarios in the risk grid.
pub const MAX_SCENARIOS: usize = 32;
/// Largest tree depth (account ids are `u32`-sized at most).
pub const MAX_DEPTH: usize = 32;
/// Largest number of oracle keys.
pub const MAX_ORACLES: usize = 16;

/// The fixed shape of a batch circuit: one proving key per shape.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shape {
    /// Transitions per batch (shorter batches are padded with no-ops).
    pub capacity: usize,
    /// Depth of the accounts tree (2^depth accounts).
    pub depth: usize,
    /// Perp markets (= perp position slots per account; slot i is market i).
    pub markets: usize,
    /// Option series (= option slots per account; slot j is series j).
    pub series: usize,
    /// Scenarios of the risk grid.
    pub scenarios: usize,
    /// Oracle key slots (the chain's oracle keys, at most this many) and
    /// quotes per oracle update.
    #[serde(default)]
    pub oracles: usize,
    /// Oracle updates (`oracle_price`, `option_marks`) per batch: each one's
    /// quorum of quotes is verified in one of this many quote sets of the
    /// circuit. 0: the shape proves no price changes.
    #[serde(default)]
    pub oracle_updates: usize,
}

impl Shape {
    /// A short, stable name used for key caches: `c8-d20-m2-s2-g5-o3u2`.
    pub fn id(&self) -> String {
        format!(
            "c{}-d{}-m{}-s{}-g{}-o{}u{}",
            self.capacity, self.depth, self.markets, self.series, self.scenarios, self.oracles, self.oracle_updates
        )
    }

    /// Checks the shape's limits.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let check = |ok: bool, what: &str| if ok { Ok(()) } else { Err(ConfigError::Shape(what.to_string())) };
        check((1..=1024).contains(&self.capacity), "capacity must be 1..=1024")?;
        check((1..=MAX_DEPTH).contains(&self.depth), "depth must be 1..=32")?;
        check((1..=MAX_MARKETS).contains(&self.markets), "markets must be 1..=16")?;
        check(self.series <= MAX_SERIES, "series must be 0..=16")?;
        check((1..=MAX_SCENARIOS).contains(&self.scenarios), "scenarios must be 1..=32")?;
        check(self.oracles <= MAX_ORACLES, "oracles must be 0..=16")?;
        check(self.oracle_updates <= self.capacity, "oracle_updates must be at most the capacity")?;
        check(self.oracle_updates == 0 || self.oracles > 0, "oracle updates need oracle slots (oracles >= 1)")
    }
}

/// A perp market's static config and initial marks.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarketConfig {
    /// Display name, e.g. "BTC-PERP".
    pub name: String,
    /// Initial margin fraction, e.g. "0.05".
    pub initial_margin: Fx6,
    /// Maintenance margin fraction, e.g. "0.03"; at most the initial one.
    pub maintenance_margin: Fx6,
    /// Mark price at genesis.
    pub mark_price: Fx6,
    /// The largest funding rate of one tick, either way (decimal; at most
    /// the global bound, 2^48 - 1 raw, which is also the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_funding_rate: Option<Fx6>,
}

/// An option series' static config and initial marks.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesConfig {
    /// Display name, e.g. "BTC-20261231-70000-C".
    pub name: String,
    /// Index of the underlying perp market.
    pub underlying: u32,
    /// Mark premium at genesis.
    pub premium: Fx6,
    /// Delta at genesis.
    pub delta: Fx6,
    /// Gamma at genesis (12 decimals).
    pub gamma: Fx12,
    /// Vega at genesis (quote per vol point).
    pub vega: Fx6,
}

/// A funded account at genesis.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisAccount {
    /// Leaf index in the accounts tree.
    pub id: u64,
    /// Initial collateral (12 decimals).
    pub collateral: Fx12,
    /// The account's public key (hex, 32 bytes compressed); without one the
    /// account's first deposit may set it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<crate::eddsa::PublicKey>,
}

/// The chain's oracles: every `oracle_price` and `option_marks` carries
/// quotes signed by at least `quorum` distinct keys of this list, and its
/// values are their median.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct OracleConfig {
    /// The oracles' public keys; a quote names its oracle by index here.
    pub keys: Vec<crate::eddsa::PublicKey>,
    /// Quotes of distinct oracles an update needs.
    pub quorum: u32,
}

/// Initial state.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    /// Funded accounts (every other account starts empty).
    #[serde(default)]
    pub accounts: Vec<GenesisAccount>,
    /// Initial insurance fund (12 decimals).
    #[serde(default)]
    pub insurance_fund: Fx12,
}

/// A chain: config plus genesis. `CHAIN.json`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainConfig {
    /// Format version ([`CONFIG_VERSION`]).
    pub version: u32,
    /// Chain identifier, bound into every batch ([`check_chain_id`]).
    #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"))]
    pub chain_id: String,
    /// Circuit shape; `markets`, `series` and `scenarios` must match the lists.
    pub shape: Shape,
    /// Perp markets, index = market id.
    pub markets: Vec<MarketConfig>,
    /// Option series, index = series id.
    #[serde(default)]
    pub series: Vec<SeriesConfig>,
    /// Scenario grid of the options risk.
    pub scenarios: Vec<Scenario>,
    /// Oracle keys and quorum (none: marks never change).
    #[serde(default)]
    pub oracles: OracleConfig,
    /// Initial state.
    #[serde(default)]
    pub genesis: Genesis,
}

/// The chain ids statesync takes: 1 to 64 characters of `A–Z a–z 0–9 . _
/// -`, starting with a letter or a digit (they appear in URLs, file names
/// and logs). The message says what is wrong.
pub fn check_chain_id(id: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if id.is_empty() || id.len() > 64 {
        return Err(format!("chain_id must be 1..=64 characters, not {}", id.len()));
    }
    if !id.starts_with(|c: char| c.is_ascii_alphanumeric()) || !id.chars().all(ok_char) {
        return Err(format!("chain_id {id:?} must start with a letter or digit and hold only A-Z a-z 0-9 . _ -"));
    }
    Ok(())
}

fn bounded(b: Bound, raw: i128, what: &str) -> Result<(), ConfigError> {
    if b.contains(raw) {
        Ok(())
    } else {
        Err(ConfigError::Bounds(format!("{what}: {} out of range [{}, {})", raw, b.min, b.max)))
    }
}

impl ChainConfig {
    /// Parses and validates `CHAIN.json`.
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        let cfg: ChainConfig = serde_json::from_str(text).map_err(|e| ConfigError::Json(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks versions, counts, bounds and margin ordering.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.version != CONFIG_VERSION {
            return Err(ConfigError::Version(self.version));
        }
        check_chain_id(&self.chain_id).map_err(ConfigError::ChainId)?;
        self.shape.validate()?;
        let s = &self.shape;
        if self.markets.len() != s.markets || self.series.len() != s.series || self.scenarios.len() != s.scenarios {
            return Err(ConfigError::Shape(format!(
                "shape says {} markets, {} series, {} scenarios; config lists {}, {}, {}",
                s.markets,
                s.series,
                s.scenarios,
                self.markets.len(),
                self.series.len(),
                self.scenarios.len()
            )));
        }
        let o = &self.oracles;
        if o.keys.len() > s.oracles {
            return Err(ConfigError::Shape(format!(
                "{} oracle keys, the shape has {} oracle slots",
                o.keys.len(),
                s.oracles
            )));
        }
        if !o.keys.is_empty() && !(1..=o.keys.len()).contains(&(o.quorum as usize)) {
            return Err(ConfigError::Bounds(format!("oracle quorum {} must be 1..={}", o.quorum, o.keys.len())));
        }
        if o.keys.is_empty() && o.quorum != 0 {
            return Err(ConfigError::Bounds("an oracle quorum without oracle keys".into()));
        }
        for (i, k) in o.keys.iter().enumerate() {
            if !k.usable() {
                return Err(ConfigError::Bounds(format!(
                    "oracle key {i} is not a point of the prime-order subgroup (or is its identity)"
                )));
            }
            if o.keys[..i].contains(k) {
                return Err(ConfigError::Bounds(format!("oracle key {i} is listed twice")));
            }
        }
        for m in &self.markets {
            bounded(fixed::FRACTION, m.initial_margin.raw(), &m.name)?;
            bounded(fixed::FRACTION, m.maintenance_margin.raw(), &m.name)?;
            bounded(fixed::PRICE, m.mark_price.raw(), &m.name)?;
            if let Some(r) = m.max_funding_rate {
                bounded(fixed::MAX_FUNDING_RATE, r.raw(), &m.name)?;
            }
            if m.maintenance_margin > m.initial_margin {
                return Err(ConfigError::Bounds(format!("{}: maintenance margin above initial margin", m.name)));
            }
        }
        for o in &self.series {
            if o.underlying as usize >= self.markets.len() {
                return Err(ConfigError::Bounds(format!("{}: unknown underlying market {}", o.name, o.underlying)));
            }
            bounded(fixed::PRICE, o.premium.raw(), &o.name)?;
            bounded(fixed::DELTA, o.delta.raw(), &o.name)?;
            bounded(fixed::GAMMA, o.gamma.raw(), &o.name)?;
            bounded(fixed::VEGA, o.vega.raw(), &o.name)?;
        }
        for sc in &self.scenarios {
            bounded(fixed::PRICE_SHOCK, sc.price_shock.raw(), "scenario price_shock")?;
            bounded(fixed::VOL_SHOCK, sc.vol_shock.raw(), "scenario vol_shock")?;
        }
        let mut seen = std::collections::BTreeSet::new();
        for a in &self.genesis.accounts {
            if a.id >= 1u64 << s.depth {
                return Err(ConfigError::Bounds(format!(
                    "genesis account {} outside a tree of depth {}",
                    a.id, s.depth
                )));
            }
            if !seen.insert(a.id) {
                return Err(ConfigError::Bounds(format!("genesis account {} listed twice", a.id)));
            }
            bounded(fixed::COLLATERAL, a.collateral.raw(), "genesis collateral")?;
            if a.key.is_some_and(|k| !k.usable()) {
                return Err(ConfigError::Bounds(format!(
                    "genesis account {}: the key is not a point of the prime-order subgroup (or is its identity)",
                    a.id
                )));
            }
        }
        bounded(fixed::FUND, self.genesis.insurance_fund.raw(), "genesis insurance_fund")
    }

    /// The chain tag: SHA-256 of the canonical config JSON, truncated to 248
    /// bits (a field element as is). Every batch proof carries it as a public
    /// input and the epoch circuit binds all its batches to one tag, so no
    /// proof of one chain can stand in another's sequence, however alike
    /// their states.
    pub fn tag(&self) -> Fr {
        let mut h = Sha256::new();
        h.update(b"statesync/epoch-chain-tag/v1\0");
        h.update(serde_json::to_vec(self).expect("chain configs serialize"));
        let mut repr = [0u8; 32];
        repr[..31].copy_from_slice(&h.finalize()[..31]);
        Fr::from_repr(repr).expect("248 bits are below the modulus")
    }

    /// The genesis state.
    pub fn genesis_state(&self) -> ChainState {
        let markets = MarketTable {
            markets: self
                .markets
                .iter()
                .map(|m| Market {
                    mark: m.mark_price,
                    funding_index: Fx6::ZERO,
                    open_interest: Fx6::ZERO,
                    initial_margin: m.initial_margin,
                    maintenance_margin: m.maintenance_margin,
                    max_funding_rate: m.max_funding_rate.unwrap_or(Fixed(fixed::MAX_FUNDING_RATE.max - 1)),
                    oracle_time: 0,
                })
                .collect(),
            series: self
                .series
                .iter()
                .map(|o| Series {
                    underlying: o.underlying,
                    premium: o.premium,
                    delta: o.delta,
                    gamma: o.gamma,
                    vega: o.vega,
                    oracle_time: 0,
                })
                .collect(),
            scenarios: self.scenarios.clone(),
            oracles: OracleTable::new(&self.shape, &self.oracles.keys, self.oracles.quorum),
            insurance_fund: self.genesis.insurance_fund,
        };
        let mut state = ChainState::new(self.shape.clone(), markets, self.tag());
        for a in &self.genesis.accounts {
            let mut acct = Account::empty(&self.shape);
            acct.collateral = a.collateral;
            acct.key = a.key;
            state.set_account(a.id, acct);
        }
        state.rehash();
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_have_a_charset_and_a_length() {
        for ok in ["perps-devnet-1", "a", "A.b_c-9", &"x".repeat(64)] {
            assert_eq!(check_chain_id(ok), Ok(()), "{ok}");
        }
        for bad in ["", "../evil/x", " sp ace\n", ".hidden", "-dash", "é", "a/b", "a%2f", &"x".repeat(65)] {
            assert!(check_chain_id(bad).is_err(), "{bad:?}");
            let cfg = ChainConfig { chain_id: bad.to_string(), ..crate::examples::chain() };
            assert!(matches!(cfg.validate(), Err(ConfigError::ChainId(_))), "{bad:?}");
        }
    }
}
