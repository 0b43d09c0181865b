//! The environment a benchmark ran in, recorded with its figures.

use std::collections::BTreeMap;

use serde::Serialize;
use statesync_api::devices::{Devices, Gpu};

/// The crates whose versions decide the figures.
const CRATES: [&str; 7] =
    ["halo2-axiom", "halo2-base", "halo2curves-axiom", "snark-verifier-sdk", "cudarc", "nvml-wrapper", "rayon"];

/// The workspace's lock file, as built.
const LOCK: &str = include_str!("../../Cargo.lock");

/// Machine and build facts.
#[derive(Debug, Clone, Serialize)]
pub struct EnvInfo {
    /// CPU model (from /proc/cpuinfo).
    pub cpu: String,
    /// Hardware threads.
    pub threads: usize,
    /// GPUs NVML reports (empty without a GPU driver).
    pub gpus: Vec<Gpu>,
    /// Why NVML is unavailable, when it is.
    pub nvml_error: Option<String>,
    /// statesync version.
    pub version: String,
    /// Versions of the proving crates, from the lock file built with.
    pub crates: BTreeMap<String, String>,
    /// The compiler that built the bench.
    pub rustc: String,
    /// The git commit the bench was built from (`build.rs`), when known.
    pub git_commit: Option<String>,
    /// Build profile.
    pub profile: String,
}

/// `name`'s version in a Cargo.lock text (the first entry of that name).
fn locked_version(lock: &str, name: &str) -> Option<String> {
    let needle = format!("name = \"{name}\"\n");
    let at = lock.find(&needle)? + needle.len();
    let line = lock[at..].lines().next()?;
    Some(line.strip_prefix("version = \"")?.strip_suffix('"')?.to_string())
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
    let devices = Devices::probe();
    EnvInfo {
        cpu,
        threads: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        gpus: devices.gpus(),
        nvml_error: devices.nvml_error(),
        version: env!("CARGO_PKG_VERSION").into(),
        crates: CRATES.iter().filter_map(|c| Some((c.to_string(), locked_version(LOCK, c)?))).collect(),
        rustc: env!("STATESYNC_RUSTC_VERSION").into(),
        git_commit: option_env!("STATESYNC_GIT_COMMIT").map(String::from),
        profile: if cfg!(debug_assertions) { "debug" } else { "release" }.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_versions_from_the_lock_file() {
        let lock =
            "[[package]]\nname = \"a\"\nversion = \"1.2.3\"\n\n[[package]]\nname = \"ab\"\nversion = \"0.1.0\"\n";
        assert_eq!(locked_version(lock, "a").as_deref(), Some("1.2.3"));
        assert_eq!(locked_version(lock, "ab").as_deref(), Some("0.1.0"));
        assert_eq!(locked_version(lock, "b"), None);
        // the real lock file names every crate the report lists
        let env = collect();
        assert_eq!(env.crates.len(), CRATES.len(), "{:?}", env.crates);
        assert!(env.rustc.starts_with("rustc "), "{}", env.rustc);
        // the commit is the build's: the tree's HEAD, as the tests are built from it
        let head = std::process::Command::new("git")
            .args(["rev-parse", "--short", "HEAD"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        if head.is_some() {
            assert_eq!(env.git_commit, head);
        }
    }
}
