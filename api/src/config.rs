//! Configuration of `statesync serve`: flags, environment variables and an
//! optional TOML file, in that order of precedence, over built-in defaults
//! that work with no configuration at all.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::Args;
use serde::Deserialize;
use statesync_prover::hal::Backend;

/// Flags (each also an environment variable) of `statesync serve`.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// TOML file with any of the settings below (flags and env win over it).
    #[arg(long, env = "STATESYNC_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "STATESYNC_BIND")]
    pub bind: Option<SocketAddr>,
    /// Data directory: database, SRS and key caches [default: ./statesync-data].
    #[arg(long, env = "STATESYNC_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// SQLite database file [default: DATA_DIR/statesync.db].
    #[arg(long, env = "STATESYNC_DATABASE")]
    pub database: Option<PathBuf>,
    /// PostgreSQL instead of the SQLite file:
    /// `postgres://user[:password]@host[:port]/database` (API nodes and
    /// `statesync worker` processes may share it;
    /// `?options=-c%20search_path%3DSCHEMA` picks a schema).
    #[arg(long, env = "STATESYNC_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Directory of the SRS and key caches (`srs/`, `keys/`), e.g. one shared
    /// by several instances [default: DATA_DIR].
    #[arg(long, env = "STATESYNC_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Ceremony KZG parameters; without them an INSECURE dev SRS is used.
    #[arg(long, env = "STATESYNC_SRS")]
    pub srs: Option<PathBuf>,
    /// Prover backend: cpu, cuda (GPU 0) or emu (the kernels on the CPU SIMT
    /// emulator; slow, for testing) [default: cuda when a GPU is usable, else cpu].
    #[arg(long, env = "STATESYNC_BACKEND")]
    pub backend: Option<Backend>,
    /// In-process proving workers [default: 1 (one per device; the CPU is one device)].
    #[arg(long, env = "STATESYNC_WORKERS")]
    pub workers: Option<usize>,
    /// Serve without API keys. Only for local development.
    #[arg(long, env = "STATESYNC_OPEN")]
    pub open: bool,
    /// Largest request body in bytes [default: 8 MiB].
    #[arg(long, env = "STATESYNC_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Request timeout in seconds (not for event streams) [default: 30].
    #[arg(long, env = "STATESYNC_REQUEST_TIMEOUT_SECS")]
    pub request_timeout_secs: Option<u64>,
    /// Sustained requests per second per API key [default: 50].
    #[arg(long, env = "STATESYNC_RATE_LIMIT")]
    pub rate_limit: Option<u32>,
    /// Burst of requests per API key [default: 400].
    #[arg(long, env = "STATESYNC_RATE_BURST")]
    pub rate_burst: Option<u32>,
    /// Attempts per job before it fails [default: 3].
    #[arg(long, env = "STATESYNC_MAX_ATTEMPTS")]
    pub max_attempts: Option<u32>,
    /// Lease of a claimed job in seconds; heartbeats renew it [default: 30].
    #[arg(long, env = "STATESYNC_LEASE_SECS")]
    pub lease_secs: Option<u64>,
    /// Proofs per epoch, at every level (the epoch circuit's N, ≥ 2):
    /// batches per level-1 epoch, epochs of the level below per level ≥ 2
    /// [default: 4].
    #[arg(long, env = "STATESYNC_EPOCH_SIZE")]
    pub epoch_size: Option<usize>,
    /// Seal epochs automatically: a level-1 epoch at EPOCH_SIZE accepted
    /// batches, a level-L epoch at EPOCH_SIZE epochs of level L - 1, or
    /// either when its first batch has waited EPOCH_MAX_WAIT; each top-level
    /// epoch is wrapped (otherwise epochs are only made on request).
    #[arg(long, env = "STATESYNC_AUTO_EPOCHS")]
    pub auto_epochs: bool,
    /// Levels of automatic epochs (1..=4) under the wrapper: level 1
    /// aggregates batch proofs, each level above EPOCH_SIZE epochs of the
    /// one below [default: 1].
    #[arg(long, env = "STATESYNC_EPOCH_LEVELS")]
    pub epoch_levels: Option<u32>,
    /// Seconds after which an automatic epoch is sealed with what it holds
    /// (1..EPOCH_SIZE proofs), counted from its first batch's acceptance, so
    /// that a quiet chain's last batches reach the wrapper too; 0: by count
    /// only [default: 600].
    #[arg(long, env = "STATESYNC_EPOCH_MAX_WAIT")]
    pub epoch_max_wait: Option<u64>,
}

/// The TOML file: the same settings, snake_case.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    bind: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database: Option<PathBuf>,
    database_url: Option<String>,
    cache_dir: Option<PathBuf>,
    srs: Option<PathBuf>,
    backend: Option<Backend>,
    workers: Option<usize>,
    open: Option<bool>,
    max_body_bytes: Option<usize>,
    request_timeout_secs: Option<u64>,
    rate_limit: Option<u32>,
    rate_burst: Option<u32>,
    max_attempts: Option<u32>,
    lease_secs: Option<u64>,
    epoch_size: Option<usize>,
    auto_epochs: Option<bool>,
    epoch_levels: Option<u32>,
    epoch_max_wait: Option<u64>,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Listen address.
    pub bind: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Database file.
    pub database: PathBuf,
    /// PostgreSQL URL, when the store is PostgreSQL rather than `database`.
    pub database_url: Option<String>,
    /// SRS and key caches.
    pub cache_dir: PathBuf,
    /// Ceremony params.
    pub srs: Option<PathBuf>,
    /// Prover backend (None: a GPU if usable, else the CPU).
    pub backend: Option<Backend>,
    /// Workers.
    pub workers: usize,
    /// No API keys.
    pub open: bool,
    /// Body limit.
    pub max_body_bytes: usize,
    /// Request timeout.
    pub request_timeout: Duration,
    /// Requests per second per key.
    pub rate_limit: u32,
    /// Burst per key.
    pub rate_burst: u32,
    /// Attempts per job.
    pub max_attempts: u32,
    /// Lease duration.
    pub lease: Duration,
    /// Proofs per epoch (N, at every level).
    pub epoch_size: usize,
    /// Automatic epochs.
    pub auto_epochs: bool,
    /// Levels of automatic epochs under the wrapper.
    pub epoch_levels: u32,
    /// An automatic epoch is sealed once its first batch has waited this
    /// long (`None`: by count only).
    pub epoch_max_wait: Option<Duration>,
}

impl ServeConfig {
    /// The wrapper circuit of this configuration's epochs: over the top
    /// level (`epoch_levels` with automatic epochs, else level 1).
    pub fn wrapper_spec(&self) -> statesync_prover::epoch::EpochSpec {
        let top = if self.auto_epochs { self.epoch_levels } else { 1 };
        statesync_prover::epoch::EpochSpec::epoch(top, self.epoch_size, statesync_prover::epoch::EPOCH_K)
            .wrapper(statesync_prover::epoch::WRAPPER_K)
    }
}

impl ServeArgs {
    /// Resolves flags over the file over the defaults.
    pub fn resolve(&self) -> Result<ServeConfig, String> {
        let file: FileConfig = match &self.config {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| format!("reading {}: {e}", p.display()))?;
                toml::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?
            }
            None => FileConfig::default(),
        };
        let data_dir = self.data_dir.clone().or(file.data_dir).unwrap_or_else(|| PathBuf::from("./statesync-data"));
        let database = self.database.clone().or(file.database).unwrap_or_else(|| data_dir.join("statesync.db"));
        let cache_dir = self.cache_dir.clone().or(file.cache_dir).unwrap_or_else(|| data_dir.clone());
        let cfg = ServeConfig {
            bind: self.bind.or(file.bind).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            database,
            database_url: self.database_url.clone().or(file.database_url),
            cache_dir,
            srs: self.srs.clone().or(file.srs),
            backend: self.backend.or(file.backend),
            workers: self.workers.or(file.workers).unwrap_or(1),
            open: self.open || file.open.unwrap_or(false),
            max_body_bytes: self.max_body_bytes.or(file.max_body_bytes).unwrap_or(8 << 20),
            request_timeout: Duration::from_secs(self.request_timeout_secs.or(file.request_timeout_secs).unwrap_or(30)),
            rate_limit: self.rate_limit.or(file.rate_limit).unwrap_or(50),
            rate_burst: self.rate_burst.or(file.rate_burst).unwrap_or(400),
            max_attempts: self.max_attempts.or(file.max_attempts).unwrap_or(3),
            lease: Duration::from_secs(self.lease_secs.or(file.lease_secs).unwrap_or(30)),
            epoch_size: self.epoch_size.or(file.epoch_size).unwrap_or(4),
            auto_epochs: self.auto_epochs || file.auto_epochs.unwrap_or(false),
            epoch_levels: self.epoch_levels.or(file.epoch_levels).unwrap_or(1),
            epoch_max_wait: Some(self.epoch_max_wait.or(file.epoch_max_wait).unwrap_or(600))
                .filter(|s| *s > 0)
                .map(Duration::from_secs),
            data_dir,
        };
        if let Some(url) = &cfg.database_url {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err("database_url must be a PostgreSQL URL (postgres://…)".into());
            }
        }
        if !(2..=16).contains(&cfg.epoch_size) {
            return Err(format!("epoch_size must be between 2 and 16, got {}", cfg.epoch_size));
        }
        if !(1..=4).contains(&cfg.epoch_levels) {
            return Err(format!("epoch_levels must be between 1 and 4, got {}", cfg.epoch_levels));
        }
        if cfg.epoch_levels > 1 && !cfg.auto_epochs {
            return Err("epoch_levels above 1 needs auto_epochs (levels above 1 are sealed automatically)".into());
        }
        if cfg.max_attempts == 0 || cfg.rate_limit == 0 || cfg.rate_burst == 0 || cfg.lease.is_zero() {
            return Err("max_attempts, rate_limit, rate_burst and lease_secs must be positive".into());
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_file_override_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "bind = \"127.0.0.1:9000\"\nworkers = 3\nopen = true\n").unwrap();
        let args = ServeArgs { config: Some(path.clone()), workers: Some(2), ..Default::default() };
        let cfg = args.resolve().unwrap();
        assert_eq!(cfg.bind.port(), 9000);
        assert_eq!(cfg.workers, 2);
        assert!(cfg.open);
        assert_eq!(cfg.database, PathBuf::from("./statesync-data/statesync.db"));
        assert_eq!(cfg.cache_dir, PathBuf::from("./statesync-data"), "caches in the data directory by default");
        let defaults = ServeArgs::default().resolve().unwrap();
        assert_eq!(defaults.bind.to_string(), "127.0.0.1:8080");
        assert!(!defaults.open);
        assert_eq!((defaults.epoch_levels, defaults.epoch_max_wait), (1, Some(Duration::from_secs(600))));
        let tree =
            ServeArgs { auto_epochs: true, epoch_levels: Some(2), epoch_max_wait: Some(0), ..Default::default() };
        assert_eq!(tree.resolve().unwrap().epoch_max_wait, None, "0: by count only");
        let manual = ServeArgs { epoch_levels: Some(2), ..Default::default() };
        assert!(manual.resolve().unwrap_err().contains("needs auto_epochs"));
        assert!(ServeArgs { auto_epochs: true, epoch_levels: Some(5), ..Default::default() }.resolve().is_err());
        std::fs::write(&path, "bnd = 1\n").unwrap();
        assert!(ServeArgs { config: Some(path), ..Default::default() }.resolve().is_err(), "unknown keys are errors");
    }
}
