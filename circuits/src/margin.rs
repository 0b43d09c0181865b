//! Margin arithmetic, exactly as the circuit computes it.
//!
//! All quantities are lifted to one *risk scale*: integers meaning
//! `value * 2 * 10^42` (the factor 2 keeps gamma's `dS^2 / 2` exact):
//!
//! * `tv`   = 2e30 * (collateral + sum size*mark + sum opt*premium)      [TV at 1e12]
//! * `tr_x` = 2e24 * sum |size| * mark * margin_fraction_x                 [1e18]
//! * `loss_s` = -sum_j opt_j*(2e18*delta_j*dS + gamma_j*dS^2 + 2e24*vega_j*dVol_s)
//!   - sum_m 2e24*size_m*dS_m, with dS = mark * price_shock_s            [1e42]
//! * `r` = max(0, max_s loss_s)
//!
//! With the bounds of [`crate::fixed`] and at most 16 markets and series every
//! one of these is below 2^231 in absolute value, far from the field modulus
//! (about 2^253.6); the circuit range-checks them to [`RISK_BITS`].

use ethnum::I256;

use crate::state::{Account, MarketTable};

/// Every risk-scale value (and every difference the circuit compares) lies in
/// `[-2^RISK_BITS, 2^RISK_BITS)`.
pub const RISK_BITS: usize = 232;

/// Lift of TV (scale 1e12) to the risk scale.
pub fn lift_tv() -> I256 {
    I256::from(2) * I256::from(10).pow(30)
}
/// Lift of TR, perp scenario moves and vega terms (scale 1e18).
pub fn lift_1e18() -> I256 {
    I256::from(2) * I256::from(10).pow(24)
}
/// Lift of delta terms (scale 1e24).
pub fn lift_delta() -> I256 {
    I256::from(2) * I256::from(10).pow(18)
}

/// An account's margin figures at the risk scale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Risk {
    /// Total value (not lifted), 12 decimals: for the deleverage rule.
    pub tv_raw: I256,
    /// Total value, lifted.
    pub tv: I256,
    /// Initial requirement.
    pub tr_initial: I256,
    /// Maintenance requirement.
    pub tr_maintenance: I256,
    /// Scenario losses, one per scenario.
    pub losses: Vec<I256>,
    /// Options/portfolio risk R = max(0, max losses).
    pub r: I256,
}

impl Risk {
    /// TV >= TR_initial + R.
    pub fn well_margined(&self) -> bool {
        self.tv >= self.tr_initial + self.r
    }
    /// TV < TR_maintenance + R.
    pub fn liquidatable(&self) -> bool {
        self.tv < self.tr_maintenance + self.r
    }
    /// TV < 0.
    pub fn deleverageable(&self) -> bool {
        self.tv_raw < I256::ZERO
    }
    /// Maintenance requirement including scenario risk.
    pub fn requirement(&self) -> I256 {
        self.tr_maintenance + self.r
    }
    /// TV minus the maintenance requirement.
    pub fn excess(&self) -> I256 {
        self.tv - self.requirement()
    }
}

fn i(x: i128) -> I256 {
    I256::from(x)
}

/// Evaluates an account against the market table.
pub fn evaluate(acct: &Account, mt: &MarketTable) -> Risk {
    let mut tv_raw = i(acct.collateral.raw());
    let mut tr_i = I256::ZERO;
    let mut tr_m = I256::ZERO;
    for (p, m) in acct.perps.iter().zip(&mt.markets) {
        tv_raw += i(p.size.raw()) * i(m.mark.raw());
        let notional = i(p.size.raw().abs()) * i(m.mark.raw());
        tr_i += notional * i(m.initial_margin.raw());
        tr_m += notional * i(m.maintenance_margin.raw());
    }
    for (o, s) in acct.options.iter().zip(&mt.series) {
        tv_raw += i(o.raw()) * i(s.premium.raw());
    }
    let losses: Vec<I256> = mt
        .scenarios
        .iter()
        .map(|sc| {
            let shock = i(sc.price_shock.raw());
            let mut loss = I256::ZERO;
            for (p, m) in acct.perps.iter().zip(&mt.markets) {
                let ds = i(m.mark.raw()) * shock;
                loss -= lift_1e18() * i(p.size.raw()) * ds;
            }
            for (o, s) in acct.options.iter().zip(&mt.series) {
                let ds = i(mt.markets[s.underlying as usize].mark.raw()) * shock;
                let per_unit = lift_delta() * i(s.delta.raw()) * ds
                    + i(s.gamma.raw()) * ds * ds
                    + lift_1e18() * i(s.vega.raw()) * i(sc.vol_shock.raw());
                loss -= i(o.raw()) * per_unit;
            }
            loss
        })
        .collect();
    let r = losses.iter().copied().fold(I256::ZERO, I256::max);
    Risk {
        tv_raw,
        tv: lift_tv() * tv_raw,
        tr_initial: lift_1e18() * tr_i,
        tr_maintenance: lift_1e18() * tr_m,
        losses,
        r,
    }
}

/// Whether `after` is a risk-reducing change of `before`: no slot grows or
/// flips sign (`after * (before - after) >= 0` per slot), the maintenance
/// requirement (TR + R) strictly decreases, and the excess over it does not
/// get worse.
pub fn risk_reducing(before: &Account, after: &Account, rb: &Risk, ra: &Risk) -> bool {
    positions_shrink(before, after) && ra.requirement() < rb.requirement() && ra.excess() >= rb.excess()
}

/// No slot grows or flips sign.
pub fn positions_shrink(before: &Account, after: &Account) -> bool {
    let shrinks = |b: i128, a: i128| i(a) * (i(b) - i(a)) >= I256::ZERO;
    before.perps.iter().zip(&after.perps).all(|(b, a)| shrinks(b.size.raw(), a.size.raw()))
        && before.options.iter().zip(&after.options).all(|(b, a)| shrinks(b.raw(), a.raw()))
}
