//! The environment a benchmark ran in, recorded with its figures.

use serde::Serialize;

/// Machine and build facts.
#[derive(Debug, Clone, Serialize)]
pub struct EnvInfo {
    /// CPU model (from /proc/cpuinfo).
    pub cpu: String,
    /// Hardware threads.
    pub threads: usize,
    /// GPUs (none without a GPU backend).
    pub gpus: Vec<String>,
    /// statesync version.
    pub version: String,
    /// halo2-axiom version the prover uses.
    pub halo2_axiom: String,
    /// git commit of the working tree, when known.
    pub git_commit: Option<String>,
    /// Build profile.
    pub profile: String,
}

/// Reads the environment.
pub fn collect() -> EnvInfo {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let git_commit = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    EnvInfo {
        cpu,
        threads: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        gpus: vec![],
        version: env!("CARGO_PKG_VERSION").into(),
        halo2_axiom: "0.5.3".into(),
        git_commit,
        profile: if cfg!(debug_assertions) { "debug" } else { "release" }.into(),
    }
}
