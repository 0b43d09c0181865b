//! The protocol state: accounts, the market table and the state root.

use std::{
    collections::BTreeMap,
    sync::{Arc, OnceLock},
};

use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use serde::{Deserialize, Serialize};

use crate::{
    config::Shape,
    eddsa::PublicKey,
    fixed::{Fx12, Fx6},
    poseidon::{self, Domain},
    smt::SparseMerkleTree,
    transition::ORDER_BITS,
};

/// A signed integer as a field element (negative values wrap to `p - |x|`).
pub fn fe(raw: i128) -> Fr {
    let u = raw.unsigned_abs();
    let abs = Fr::from_raw([u as u64, (u >> 64) as u64, 0, 0]);
    if raw < 0 {
        -abs
    } else {
        abs
    }
}

/// One perp position slot. Slot `i` of an account always holds market `i`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PerpSlot {
    /// Signed position size (long > 0).
    pub size: Fx6,
    /// The market's funding index when this position was last settled.
    pub funding_index: Fx6,
}

/// An account leaf.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Collateral, 12 decimals, may be negative after losses.
    pub collateral: Fx12,
    /// Perp slots, one per market.
    pub perps: Vec<PerpSlot>,
    /// Option slots (signed sizes), one per series.
    pub options: Vec<Fx6>,
    /// The key that authorizes the account's withdrawals and key changes;
    /// none until genesis or a first deposit sets it. (Always serialized:
    /// accounts are stored in bincode, which cannot skip a field.)
    #[serde(default)]
    pub key: Option<PublicKey>,
    /// Signed transitions applied so far: the nonce the next one must carry.
    #[serde(default)]
    pub nonce: u64,
    /// The account's orders tree: per slot (`id mod 64`) the latest order
    /// that filled in it. Empty slots are absent.
    #[serde(default)]
    pub orders: Orders,
}

/// An account's orders: per slot (`id mod 64`, [`ORDER_BITS`] bits) the
/// latest order that filled in it, and their tree ([`ORDER_BITS`] deep,
/// empty leaves `(0, 0, 0)`). Serialized as the map of its slots; the tree
/// is built the first time it is needed and then kept up to date by
/// [`Orders::insert`], so that hashing an account does not rebuild it.
#[derive(Debug, Clone, Default)]
pub struct Orders {
    fills: BTreeMap<u64, OrderFill>,
    tree: OnceLock<SparseMerkleTree>,
}

impl PartialEq for Orders {
    fn eq(&self, o: &Self) -> bool {
        self.fills == o.fills
    }
}

impl Eq for Orders {}

impl Serialize for Orders {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.fills.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Orders {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let fills = BTreeMap::<u64, OrderFill>::deserialize(d)?;
        if let Some(slot) = fills.keys().find(|s| **s >= 1 << ORDER_BITS) {
            return Err(serde::de::Error::custom(format!("order slot {slot} is outside the orders tree")));
        }
        Ok(Orders { fills, tree: OnceLock::new() })
    }
}

impl FromIterator<(u64, OrderFill)> for Orders {
    fn from_iter<I: IntoIterator<Item = (u64, OrderFill)>>(iter: I) -> Self {
        let mut orders = Orders::default();
        for (slot, fill) in iter {
            orders.insert(slot, fill);
        }
        orders
    }
}

impl Orders {
    /// The order filling in slot `slot` (the empty leaf when none has).
    pub fn get(&self, slot: u64) -> OrderFill {
        self.fills.get(&slot).copied().unwrap_or_default()
    }

    /// The slots that hold an order, in order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &OrderFill)> {
        self.fills.iter().map(|(s, f)| (*s, f))
    }

    /// Puts `fill` in slot `slot` (below `2^ORDER_BITS`), and in the tree
    /// if it is built (one leaf and its path rehashed).
    pub fn insert(&mut self, slot: u64, fill: OrderFill) {
        assert!(slot < 1 << ORDER_BITS, "order slot outside the orders tree");
        self.fills.insert(slot, fill);
        if let Some(tree) = self.tree.get_mut() {
            tree.update(slot, fill.hash());
            tree.rehash();
        }
    }

    /// The tree (built on first use).
    pub fn tree(&self) -> &SparseMerkleTree {
        self.tree.get_or_init(|| {
            static EMPTY: OnceLock<SparseMerkleTree> = OnceLock::new();
            let empty = EMPTY.get_or_init(|| SparseMerkleTree::new(ORDER_BITS, OrderFill::default().hash()));
            empty.clone().with_leaves(self.fills.iter().map(|(s, f)| (*s, f.hash())))
        })
    }
}

/// A leaf of an account's orders tree: the latest order of its slot and
/// how much of it has filled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderFill {
    /// The order's id.
    pub id: u64,
    /// Size filled so far (from the order's side: never negative).
    pub filled: Fx6,
    /// Fees paid so far.
    pub fees: Fx6,
}

impl OrderFill {
    /// Field encoding hashed into the leaf.
    pub fn to_fields(&self) -> [Fr; 3] {
        [fe(self.id as i128), fe(self.filled.raw()), fe(self.fees.raw())]
    }

    /// Poseidon hash of the leaf.
    pub fn hash(&self) -> Fr {
        poseidon::hash(Domain::Order, &self.to_fields())
    }
}

impl Account {
    /// The empty account of a shape (every unfunded leaf).
    pub fn empty(shape: &Shape) -> Self {
        Account {
            collateral: Fx12::ZERO,
            perps: vec![PerpSlot::default(); shape.markets],
            options: vec![Fx6::ZERO; shape.series],
            key: None,
            nonce: 0,
            orders: Orders::default(),
        }
    }

    /// Field encoding hashed into the leaf: collateral, (size, funding index)
    /// per market, size per series, the key's x and y (`(0, 0)`: none), the
    /// nonce, the root of the orders tree.
    pub fn to_fields(&self) -> Vec<Fr> {
        let mut v = vec![fe(self.collateral.raw())];
        for p in &self.perps {
            v.push(fe(p.size.raw()));
            v.push(fe(p.funding_index.raw()));
        }
        v.extend(self.options.iter().map(|o| fe(o.raw())));
        v.extend(crate::transition::key_fields(self.key.as_ref()));
        v.push(fe(self.nonce as i128));
        v.push(self.orders.tree().root());
        v
    }

    /// Poseidon hash of the leaf.
    pub fn hash(&self) -> Fr {
        poseidon::hash(Domain::Leaf, &self.to_fields())
    }
}

/// A perp market's live values.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Market {
    /// Oracle mark price.
    pub mark: Fx6,
    /// Cumulative funding index (quote per unit of size; longs pay when it rises).
    pub funding_index: Fx6,
    /// Open interest: the sum of all long sizes.
    pub open_interest: Fx6,
    /// Initial margin fraction.
    pub initial_margin: Fx6,
    /// Maintenance margin fraction.
    pub maintenance_margin: Fx6,
    /// The largest funding rate of one tick, either way.
    pub max_funding_rate: Fx6,
    /// Timestamp of the latest oracle update (0: none yet); the next one
    /// must be later.
    #[serde(default)]
    pub oracle_time: u64,
}

/// An option series' live marks.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Series {
    /// Underlying perp market.
    pub underlying: u32,
    /// Mark premium per unit.
    pub premium: Fx6,
    /// Delta per unit.
    pub delta: Fx6,
    /// Gamma per unit, per unit move of the underlying (12 decimals).
    pub gamma: Fx12,
    /// Vega per unit, quote per vol point.
    pub vega: Fx6,
    /// Timestamp of the latest oracle update (0: none yet).
    #[serde(default)]
    pub oracle_time: u64,
}

/// One scenario of the risk grid.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Relative move of every underlying, e.g. "-0.1" for -10%.
    pub price_shock: Fx6,
    /// Absolute move of implied vol in vol points, e.g. "5".
    pub vol_shock: Fx6,
}

/// The chain's oracle keys and quorum, fixed at genesis and kept in the
/// market table, so that the state root (and every batch proof) binds them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OracleTable {
    /// One slot per oracle of the shape; `None` past the chain's keys.
    pub keys: Vec<Option<PublicKey>>,
    /// Quotes of distinct oracles an update needs.
    pub quorum: u32,
}

impl OracleTable {
    /// `keys` in a shape's oracle slots.
    pub fn new(shape: &Shape, keys: &[PublicKey], quorum: u32) -> Self {
        let mut slots: Vec<Option<PublicKey>> = keys.iter().copied().map(Some).collect();
        slots.resize(shape.oracles, None);
        OracleTable { keys: slots, quorum }
    }

    /// The key of oracle `i`, if the chain has one.
    pub fn key(&self, i: u32) -> Option<PublicKey> {
        self.keys.get(i as usize).copied().flatten()
    }
}

/// The market table; its Poseidon hash is the market root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketTable {
    /// Perp markets.
    pub markets: Vec<Market>,
    /// Option series.
    pub series: Vec<Series>,
    /// Scenario grid.
    pub scenarios: Vec<Scenario>,
    /// Oracle keys and quorum.
    pub oracles: OracleTable,
    /// Insurance fund (fees are paid into it), 12 decimals.
    pub insurance_fund: Fx12,
}

impl MarketTable {
    /// Field encoding: per market (mark, funding index, open interest, imf,
    /// mmf, max funding rate, oracle time); per series (underlying, premium,
    /// delta, gamma, vega, oracle time); per scenario (price shock, vol
    /// shock); per oracle slot the key's x and y (`(0, 0)`: none); the
    /// quorum; the insurance fund.
    pub fn to_fields(&self) -> Vec<Fr> {
        let mut v = Vec::new();
        for m in &self.markets {
            v.extend(
                [m.mark, m.funding_index, m.open_interest, m.initial_margin, m.maintenance_margin, m.max_funding_rate]
                    .map(|x| fe(x.raw())),
            );
            v.push(fe(m.oracle_time as i128));
        }
        for s in &self.series {
            v.extend([
                fe(s.underlying as i128),
                fe(s.premium.raw()),
                fe(s.delta.raw()),
                fe(s.gamma.raw()),
                fe(s.vega.raw()),
                fe(s.oracle_time as i128),
            ]);
        }
        for s in &self.scenarios {
            v.extend([fe(s.price_shock.raw()), fe(s.vol_shock.raw())]);
        }
        for k in &self.oracles.keys {
            v.extend(crate::transition::key_fields(k.as_ref()));
        }
        v.push(fe(self.oracles.quorum as i128));
        v.push(fe(self.insurance_fund.raw()));
        v
    }

    /// The market root.
    pub fn root(&self) -> Fr {
        poseidon::hash(Domain::Market, &self.to_fields())
    }
}

/// State root = Poseidon(accounts root, market root).
pub fn state_root(accounts_root: Fr, market_root: Fr) -> Fr {
    poseidon::hash(Domain::State, &[accounts_root, market_root])
}

/// A stored state of another [`STATE_VERSION`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the state was written with state version {0}, this build reads version {STATE_VERSION} (the state root, \
     leaf encoding and batch circuit changed): prove what is pending with the old build, then start the chain \
     afresh"
)]
pub struct StateVersionError(pub u32);

/// A chain's whole state. Cloning is how a batch is applied atomically:
/// the accounts and the tree's nodes are persistent maps ([`imbl`]), so a
/// clone shares them and costs nothing, and a batch applied to it copies
/// only what it touches, whatever the size of the chain.
#[derive(Debug, Clone)]
pub struct ChainState {
    shape: Shape,
    /// Market table.
    pub markets: MarketTable,
    accounts: imbl::OrdMap<u64, Arc<Account>>,
    tree: SparseMerkleTree,
    /// Sequence number the next batch must carry.
    pub next_seq: u64,
    /// The chain tag ([`crate::config::ChainConfig::tag`]), bound into every
    /// batch proof.
    pub tag: Fr,
}

/// Version of the state encoding (leaf and tree hashing, state root) this
/// build reads and writes; bumped with the batch circuit's version.
pub const STATE_VERSION: u32 = 5;

/// The serialized form of [`ChainState`] (the tree is rebuilt on load).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredState {
    /// [`STATE_VERSION`] of the writer.
    pub version: u32,
    /// The chain tag.
    #[serde(with = "crate::witness::fr_hex")]
    pub tag: Fr,
    /// Shape.
    pub shape: Shape,
    /// Market table.
    pub markets: MarketTable,
    /// Non-empty accounts.
    pub accounts: BTreeMap<u64, Account>,
    /// Next sequence number.
    pub next_seq: u64,
}

impl ChainState {
    /// A state with the given market table and no accounts.
    pub fn new(shape: Shape, markets: MarketTable, tag: Fr) -> Self {
        let empty = Account::empty(&shape).hash();
        let tree = SparseMerkleTree::new(shape.depth, empty);
        ChainState { shape, markets, accounts: imbl::OrdMap::new(), tree, next_seq: 0, tag }
    }

    /// Rebuilds a state from its stored form; a state written by another
    /// state version is refused (its roots hash differently).
    pub fn from_stored(s: StoredState) -> Result<Self, StateVersionError> {
        if s.version != STATE_VERSION {
            return Err(StateVersionError(s.version));
        }
        let mut state = ChainState::new(s.shape, s.markets, s.tag);
        let empty = Account::empty(&state.shape);
        state.accounts = s.accounts.into_iter().filter(|(_, a)| *a != empty).map(|(id, a)| (id, Arc::new(a))).collect();
        state.tree = state.tree.with_leaves(state.accounts.iter().map(|(id, a)| (*id, a.hash())));
        state.next_seq = s.next_seq;
        Ok(state)
    }

    /// The stored form.
    pub fn to_stored(&self) -> StoredState {
        StoredState {
            version: STATE_VERSION,
            tag: self.tag,
            shape: self.shape.clone(),
            markets: self.markets.clone(),
            accounts: self.accounts().map(|(id, a)| (id, a.clone())).collect(),
            next_seq: self.next_seq,
        }
    }

    /// The circuit shape.
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    /// An account (the empty account when never touched).
    pub fn account(&self, id: u64) -> Account {
        self.accounts.get(&id).map_or_else(|| Account::empty(&self.shape), |a| Account::clone(a))
    }

    /// Non-empty accounts, by id.
    pub fn accounts(&self) -> impl Iterator<Item = (u64, &Account)> {
        self.accounts.iter().map(|(id, a)| (*id, a.as_ref()))
    }

    /// Writes an account and updates the tree. `id` must be inside the tree.
    pub fn set_account(&mut self, id: u64, account: Account) {
        self.tree.update(id, account.hash());
        if account == Account::empty(&self.shape) {
            self.accounts.remove(&id);
        } else {
            self.accounts.insert(id, Arc::new(account));
        }
    }

    /// Merkle siblings of a leaf, from the leaf level up (hashing what
    /// updates left pending on the way: [`SparseMerkleTree`]).
    pub fn path(&mut self, id: u64) -> Vec<Fr> {
        self.tree.hash_path(id)
    }

    /// Hashes what updates left pending in the accounts tree, so that the
    /// roots are read without hashing (the engine does at the end of each
    /// batch).
    pub fn rehash(&mut self) {
        self.tree.rehash();
    }

    /// Root of the accounts tree.
    pub fn accounts_root(&self) -> Fr {
        self.tree.root()
    }

    /// The state root.
    pub fn root(&self) -> Fr {
        state_root(self.accounts_root(), self.markets.root())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{examples, smt};

    #[test]
    fn the_kept_orders_tree_follows_its_fills() {
        let fill = |id: u64| OrderFill { id, filled: crate::fixed::Fixed(Fx6::ONE), fees: Fx6::ZERO };
        let mut kept = Orders::default();
        kept.insert(5, fill(5));
        let before = kept.tree().root();
        for (slot, id) in [(5, 69), (0, 64), (63, 127), (17, 17)] {
            kept.insert(slot, fill(id));
        }
        let fresh: Orders = kept.iter().map(|(s, f)| (s, *f)).collect();
        assert_eq!(kept, fresh);
        assert_eq!(kept.tree().root(), fresh.tree().root(), "updated in place = built afresh");
        assert_ne!(kept.tree().root(), before);
        let mut one = SparseMerkleTree::new(ORDER_BITS, OrderFill::default().hash());
        one.update(5, fill(5).hash());
        assert_eq!(before, one.root());
        for (slot, f) in kept.iter() {
            assert_eq!(smt::root_from_path(f.hash(), slot, &kept.tree().path(slot)), kept.tree().root());
        }
        // a stored slot outside the tree is refused, not a panic later
        let bad = bincode::serialize(&BTreeMap::from([(64u64, fill(64))])).unwrap();
        assert!(bincode::deserialize::<Orders>(&bad).is_err());
        let good = bincode::serialize(&kept).unwrap();
        assert_eq!(bincode::deserialize::<Orders>(&good).unwrap(), kept);
    }

    #[test]
    fn a_stored_state_loads_to_the_same_root() {
        let cfg = examples::chain();
        let mut st = cfg.genesis_state();
        for id in [3u64, 4, 17, 200] {
            let mut a = st.account(id);
            a.collateral.0 += 1_000 * id as i128;
            a.orders.insert(id % 64, OrderFill { id, filled: crate::fixed::Fixed(Fx6::ONE), fees: Fx6::ZERO });
            st.set_account(id, a);
        }
        st.set_account(200, Account::empty(st.shape()));
        let mut loaded = ChainState::from_stored(st.to_stored()).unwrap();
        assert_eq!(loaded.root(), st.root());
        assert!(loaded.accounts().eq(st.accounts()));
        for id in [0u64, 3, 4, 17, 200] {
            assert_eq!(loaded.path(id), st.path(id));
        }
    }

    #[test]
    fn accounts_round_trip_in_bincode_and_json() {
        let shape = examples::chain().shape;
        let mut with_key = Account::empty(&shape);
        (with_key.key, with_key.nonce) = (Some(examples::secret(1).public()), 7);
        for a in [Account::empty(&shape), with_key] {
            let bytes = bincode::serialize(&a).unwrap();
            assert_eq!(bincode::deserialize::<Account>(&bytes).unwrap(), a);
            assert_eq!(serde_json::from_str::<Account>(&serde_json::to_string(&a).unwrap()).unwrap(), a);
        }
    }
}
