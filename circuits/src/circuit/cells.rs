//! The cells of an account leaf and of the market table, loaded from the
//! witness and hashed in the order of their native `to_fields`.

use halo2_base::{halo2_proofs::halo2curves::bn256::Fr, Context};

use super::gadgets::V;
use crate::state::fe;

/// Account leaf cells.
#[derive(Clone)]
pub(super) struct Leaf {
    pub(super) coll: V,
    pub(super) sizes: Vec<V>,
    pub(super) fidx: Vec<V>,
    pub(super) opts: Vec<V>,
    /// Key x, y (`(0, 0)`: none).
    pub(super) key: [V; 2],
    pub(super) nonce: V,
    /// Root of the account's orders tree.
    pub(super) orders: V,
}

impl Leaf {
    pub(super) fn load(ctx: &mut Context<Fr>, a: &crate::state::Account) -> Self {
        Leaf {
            coll: ctx.load_witness(fe(a.collateral.raw())),
            sizes: a.perps.iter().map(|p| ctx.load_witness(fe(p.size.raw()))).collect(),
            fidx: a.perps.iter().map(|p| ctx.load_witness(fe(p.funding_index.raw()))).collect(),
            opts: a.options.iter().map(|o| ctx.load_witness(fe(o.raw()))).collect(),
            key: crate::transition::key_fields(a.key.as_ref()).map(|v| ctx.load_witness(v)),
            nonce: ctx.load_witness(fe(a.nonce as i128)),
            orders: ctx.load_witness(a.orders.tree().root()),
        }
    }
    /// Same order as [`crate::state::Account::to_fields`].
    pub(super) fn fields(&self) -> Vec<V> {
        let mut v = vec![self.coll];
        for (s, f) in self.sizes.iter().zip(&self.fidx) {
            v.push(*s);
            v.push(*f);
        }
        v.extend(&self.opts);
        v.extend(self.key);
        v.push(self.nonce);
        v.push(self.orders);
        v
    }
}

/// Market table cells.
#[derive(Clone)]
pub(super) struct Table {
    pub(super) mark: Vec<V>,
    pub(super) fidx: Vec<V>,
    pub(super) oi: Vec<V>,
    pub(super) imf: Vec<V>,
    pub(super) mmf: Vec<V>,
    pub(super) maxf: Vec<V>,
    /// Latest oracle timestamp per market, per series.
    pub(super) otime: Vec<V>,
    pub(super) stime: Vec<V>,
    /// Oracle keys (x, y; `(0, 0)`: none) and the quorum.
    pub(super) okeys: Vec<[V; 2]>,
    pub(super) quorum: V,
    pub(super) und: Vec<V>,
    pub(super) prem: Vec<V>,
    pub(super) delta: Vec<V>,
    pub(super) gamma: Vec<V>,
    pub(super) vega: Vec<V>,
    pub(super) pshock: Vec<V>,
    pub(super) vshock: Vec<V>,
    pub(super) fund: V,
}

impl Table {
    pub(super) fn load(ctx: &mut Context<Fr>, mt: &crate::state::MarketTable) -> Self {
        let mut l = |x: i128| ctx.load_witness(fe(x));
        let mut t = Table {
            mark: vec![],
            fidx: vec![],
            oi: vec![],
            imf: vec![],
            mmf: vec![],
            maxf: vec![],
            otime: vec![],
            stime: vec![],
            okeys: vec![],
            quorum: l(mt.oracles.quorum as i128),
            und: vec![],
            prem: vec![],
            delta: vec![],
            gamma: vec![],
            vega: vec![],
            pshock: vec![],
            vshock: vec![],
            fund: l(mt.insurance_fund.raw()),
        };
        for m in &mt.markets {
            t.mark.push(l(m.mark.raw()));
            t.fidx.push(l(m.funding_index.raw()));
            t.oi.push(l(m.open_interest.raw()));
            t.imf.push(l(m.initial_margin.raw()));
            t.mmf.push(l(m.maintenance_margin.raw()));
            t.maxf.push(l(m.max_funding_rate.raw()));
            t.otime.push(l(m.oracle_time as i128));
        }
        for s in &mt.series {
            t.und.push(l(s.underlying as i128));
            t.prem.push(l(s.premium.raw()));
            t.delta.push(l(s.delta.raw()));
            t.gamma.push(l(s.gamma.raw()));
            t.vega.push(l(s.vega.raw()));
            t.stime.push(l(s.oracle_time as i128));
        }
        for s in &mt.scenarios {
            t.pshock.push(l(s.price_shock.raw()));
            t.vshock.push(l(s.vol_shock.raw()));
        }
        for k in &mt.oracles.keys {
            t.okeys.push(crate::transition::key_fields(k.as_ref()).map(|v| ctx.load_witness(v)));
        }
        t
    }
    /// Same order as [`crate::state::MarketTable::to_fields`].
    pub(super) fn fields(&self) -> Vec<V> {
        let mut v = vec![];
        for m in 0..self.mark.len() {
            v.extend([self.mark[m], self.fidx[m], self.oi[m], self.imf[m], self.mmf[m], self.maxf[m], self.otime[m]]);
        }
        for j in 0..self.prem.len() {
            v.extend([self.und[j], self.prem[j], self.delta[j], self.gamma[j], self.vega[j], self.stime[j]]);
        }
        for s in 0..self.pshock.len() {
            v.extend([self.pshock[s], self.vshock[s]]);
        }
        for k in &self.okeys {
            v.extend(k);
        }
        v.push(self.quorum);
        v.push(self.fund);
        v
    }
}
