//! Summary statistics.

use serde::Serialize;

/// min / median / max and tail percentiles of a sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    /// Sample size.
    pub n: usize,
    /// Minimum.
    pub min: f64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Maximum.
    pub max: f64,
}

/// Nearest-rank percentile of a sorted, non-empty sample.
fn rank(sorted: &[f64], p: f64) -> f64 {
    let idx = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[idx.clamp(1, sorted.len()) - 1]
}

/// Summarizes a sample; `None` when it is empty.
pub fn summarize(sample: &[f64]) -> Option<Summary> {
    if sample.is_empty() {
        return None;
    }
    let mut s = sample.to_vec();
    s.sort_by(f64::total_cmp);
    Some(Summary {
        n: s.len(),
        min: s[0],
        p50: rank(&s, 50.0),
        p95: rank(&s, 95.0),
        p99: rank(&s, 99.0),
        max: s[s.len() - 1],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = summarize(&v).unwrap();
        assert_eq!((s.min, s.p50, s.p95, s.p99, s.max), (1.0, 50.0, 95.0, 99.0, 100.0));
        assert_eq!(summarize(&[3.0]).unwrap().p99, 3.0);
        assert!(summarize(&[]).is_none());
    }
}
