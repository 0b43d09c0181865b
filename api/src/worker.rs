//! `statesync worker`: a proving process of a cluster. It needs no chain
//! state: it claims jobs (their stored witnesses) and epochs (the stored
//! batch proofs) from the service's PostgreSQL under the lease protocol of
//! [`crate::store::WorkQueue`], proves them and stores the proofs, with one
//! proving device per GPU (or the CPU) and `--concurrency` loops on each:
//! with two loops a device proves one job while the CPU synthesizes the
//! next one's witness. A device error fails that attempt only (the work goes
//! back to the queue at once for another device); repeated device errors
//! take the device out of the rotation ([`crate::devices::ProvingDevice`]),
//! and the process's other devices go on. An operations port serves
//! `/healthz`, `/readyz`, `/metrics` and `/v1/devices`.

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{atomic::Ordering, Arc},
};

use clap::Args;
use statesync_prover::hal::{self, Backend, Hal};

use crate::{
    config::{ServeArgs, ServeConfig},
    http,
    serve::{cancel_on_signal, install_metrics, join_loops, spawn_loops},
    service::Service,
    store::sql::SqlStore,
};

/// Flags (each also an environment variable) of `statesync worker`.
#[derive(Debug, Clone, Default, Args)]
pub struct WorkerArgs {
    /// The TOML file of `statesync serve` (its settings a worker has no use
    /// for are read and ignored; flags and env win over it).
    #[arg(long, env = "STATESYNC_CONFIG")]
    pub config: Option<PathBuf>,
    /// The service's PostgreSQL: `postgres://user[:password]@host[:port]/database`.
    #[arg(long, env = "STATESYNC_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Address of the operations port (health, metrics, devices; no API)
    /// [default: 127.0.0.1:9090].
    #[arg(long, env = "STATESYNC_WORKER_BIND")]
    pub bind: Option<SocketAddr>,
    /// Data directory: the SRS and key caches unless --cache-dir [default: ./statesync-data].
    #[arg(long, env = "STATESYNC_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Directory of the SRS and key caches (`srs/`, `keys/`) [default: DATA_DIR].
    #[arg(long, env = "STATESYNC_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Ceremony KZG parameters; without them an INSECURE dev SRS is used
    /// (every node of a cluster must use the same).
    #[arg(long, env = "STATESYNC_SRS")]
    pub srs: Option<PathBuf>,
    /// GPUs to prove on, by CUDA ordinal (`0,1,3`) [default: every GPU, or
    /// the CPU when there is none].
    #[arg(long, env = "STATESYNC_DEVICES", value_delimiter = ',', conflicts_with = "backend")]
    pub devices: Option<Vec<usize>>,
    /// One device of this backend instead: cpu, emu, or cuda (GPU 0).
    #[arg(long, env = "STATESYNC_BACKEND")]
    pub backend: Option<Backend>,
    /// Proving loops per device [default: 2 on a GPU (witness synthesis on
    /// the CPU overlaps proving on the device), 1 on the CPU].
    #[arg(long, env = "STATESYNC_CONCURRENCY")]
    pub concurrency: Option<usize>,
    /// Lease of claimed work in seconds; heartbeats renew it [default: 30].
    #[arg(long, env = "STATESYNC_LEASE_SECS")]
    pub lease_secs: Option<u64>,
    /// Proofs per epoch (as the API nodes' --epoch-size) [default: 4].
    #[arg(long, env = "STATESYNC_EPOCH_SIZE")]
    pub epoch_size: Option<usize>,
    /// Seal epochs automatically after each proof (as the API nodes'
    /// --auto-epochs).
    #[arg(long, env = "STATESYNC_AUTO_EPOCHS")]
    pub auto_epochs: bool,
    /// Levels of automatic epochs (as the API nodes' --epoch-levels) [default: 1].
    #[arg(long, env = "STATESYNC_EPOCH_LEVELS")]
    pub epoch_levels: Option<u32>,
    /// Seconds before an automatic epoch is sealed by time (as the API
    /// nodes' --epoch-max-wait) [default: 600].
    #[arg(long, env = "STATESYNC_EPOCH_MAX_WAIT")]
    pub epoch_max_wait: Option<u64>,
}

/// What a worker process runs: the shared settings and its devices.
#[derive(Debug, Clone)]
pub struct WorkerPlan {
    /// Store, caches, lease and epoch settings (`bind` is the operations port).
    pub config: ServeConfig,
    /// The devices: GPU ordinals, or one device of a backend.
    pub devices: DeviceChoice,
    /// Loops per device.
    pub concurrency: Option<usize>,
}

/// Which devices a worker proves on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceChoice {
    /// These GPUs.
    Gpus(Vec<usize>),
    /// One device of this backend.
    One(Backend),
    /// Every GPU, else the CPU.
    Auto,
}

impl WorkerArgs {
    /// Resolves flags over the file over the defaults.
    pub fn resolve(&self) -> Result<WorkerPlan, String> {
        let shared = ServeArgs {
            config: self.config.clone(),
            database_url: self.database_url.clone(),
            data_dir: self.data_dir.clone(),
            cache_dir: self.cache_dir.clone(),
            srs: self.srs.clone(),
            backend: self.backend,
            lease_secs: self.lease_secs,
            epoch_size: self.epoch_size,
            auto_epochs: self.auto_epochs,
            epoch_levels: self.epoch_levels,
            epoch_max_wait: self.epoch_max_wait,
            ..Default::default()
        };
        let mut config = shared.resolve()?;
        if config.database_url.is_none() {
            return Err("a worker needs the service's PostgreSQL: --database-url postgres://… \
                        (a single-node SQLite service proves in its own process)"
                .into());
        }
        config.bind = self.bind.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9090)));
        let devices = match (&self.devices, self.backend) {
            (Some(list), _) if list.is_empty() => return Err("--devices lists no GPU".into()),
            (Some(list), _) => {
                let mut sorted = list.clone();
                sorted.sort_unstable();
                sorted.dedup();
                if sorted.len() != list.len() {
                    return Err("--devices names a GPU twice".into());
                }
                DeviceChoice::Gpus(list.clone())
            }
            (None, Some(Backend::Cuda)) => DeviceChoice::Gpus(vec![0]),
            (None, Some(backend)) => DeviceChoice::One(backend),
            (None, None) => DeviceChoice::Auto,
        };
        if self.concurrency == Some(0) {
            return Err("--concurrency must be at least 1".into());
        }
        Ok(WorkerPlan { config, devices, concurrency: self.concurrency })
    }
}

/// Hals with their devices' labels (`cuda:N`, `cpu`, `emu`).
type LabelledHals = Vec<(String, Arc<dyn Hal>)>;

/// The Hals of a worker's devices.
fn open_devices(choice: &DeviceChoice) -> Result<LabelledHals, String> {
    let gpus = |ordinals: &[usize]| -> Result<LabelledHals, String> {
        ordinals
            .iter()
            .map(|&i| hal::cuda(i).map(|h| (format!("cuda:{i}"), h)).map_err(|e| format!("GPU {i}: {e}")))
            .collect()
    };
    match choice {
        DeviceChoice::Gpus(list) => gpus(list),
        DeviceChoice::One(backend) => {
            let hal = hal::select(Some(*backend)).map_err(|e| format!("prover backend: {e}"))?;
            Ok(vec![(backend.to_string(), hal)])
        }
        DeviceChoice::Auto => match hal::gpu_count() {
            0 => {
                tracing::info!("no usable GPU: proving on the CPU");
                Ok(vec![("cpu".into(), hal::select(Some(Backend::Cpu)).map_err(|e| e.to_string())?)])
            }
            n => gpus(&(0..n).collect::<Vec<_>>()),
        },
    }
}

/// Runs a worker process until a shutdown signal: work in progress goes
/// back to the queue (its attempt not counted).
pub async fn run(plan: WorkerPlan) -> Result<(), String> {
    let cfg = plan.config;
    let url = cfg.database_url.as_deref().expect("resolve requires it");
    // (the URL may hold a password: not repeated in the error)
    let store = SqlStore::postgres(url, None).await.map_err(|e| format!("connecting to PostgreSQL: {e}"))?;
    let metrics = install_metrics()?;
    let listener = tokio::net::TcpListener::bind(cfg.bind).await.map_err(|e| format!("binding {}: {e}", cfg.bind))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let devices = open_devices(&plan.devices)?;
    let (_, first) = devices.first().cloned().ok_or("no device to prove on")?;
    let svc = Arc::new(Service::new(Arc::new(store), cfg.clone(), first));
    let instance = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let mut loops = vec![];
    for (label, hal) in devices {
        let n = plan.concurrency.unwrap_or(if hal.backend() == Backend::Cpu { 1 } else { 2 });
        println!("proving on {label}: {} ({n} loop{})", hal.name(), if n == 1 { "" } else { "s" });
        let device = svc.add_device(label, svc.prover.with_hal(hal), n);
        loops.extend(spawn_loops(&svc, &device, &instance));
    }
    if svc.prover.srs().is_insecure() {
        println!("WARNING: proving with the INSECURE development SRS (public seed); pass --srs with ceremony params in production");
    }
    println!("statesync worker {instance} ready; operations port http://{addr}");
    tracing::info!(%addr, instance, loops = loops.len(), "statesync worker started");
    svc.ready.store(true, Ordering::SeqCst);
    let stop = svc.stopping.clone();
    let app = http::worker_router(svc.clone(), metrics);
    let signal = cancel_on_signal(stop.clone(), "no new claims, running work goes back to the queue");
    let served = axum::serve(listener, app).with_graceful_shutdown(signal).await;
    stop.cancel();
    svc.ready.store(false, Ordering::SeqCst);
    join_loops(loops).await;
    tracing::info!("statesync worker stopped");
    served.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Result<WorkerPlan, String> {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            worker: WorkerArgs,
        }
        let argv = ["worker"].iter().chain(extra);
        <Cli as clap::Parser>::try_parse_from(argv).map_err(|e| e.to_string())?.worker.resolve()
    }

    #[test]
    fn worker_flags_resolve() {
        let pg = ["--database-url", "postgres://u@h/db"];
        assert!(args(&[]).unwrap_err().contains("PostgreSQL"), "a worker needs the cluster's database");
        let plan = args(&pg).unwrap();
        assert_eq!(plan.devices, DeviceChoice::Auto);
        assert_eq!(plan.config.bind.to_string(), "127.0.0.1:9090");
        let plan = args(&[&pg[..], &["--devices", "0,2", "--concurrency", "3"]].concat()).unwrap();
        assert_eq!((plan.devices, plan.concurrency), (DeviceChoice::Gpus(vec![0, 2]), Some(3)));
        let plan = args(&[&pg[..], &["--backend", "cpu"]].concat()).unwrap();
        assert_eq!(plan.devices, DeviceChoice::One(Backend::Cpu));
        assert_eq!(args(&[&pg[..], &["--backend", "cuda"]].concat()).unwrap().devices, DeviceChoice::Gpus(vec![0]));
        assert!(args(&[&pg[..], &["--devices", "1,1"]].concat()).unwrap_err().contains("twice"));
        assert!(args(&[&pg[..], &["--concurrency", "0"]].concat()).is_err());
        assert!(args(&[&pg[..], &["--devices", "0", "--backend", "cpu"]].concat()).is_err(), "one or the other");
        assert!(args(&["--database-url", "mysql://x"]).is_err());
    }

    #[test]
    fn gpus_that_are_not_there_are_an_error_not_a_panic() {
        if hal::gpu_count() > 0 {
            return; // a GPU host
        }
        let err = open_devices(&DeviceChoice::Gpus(vec![0])).unwrap_err();
        assert!(err.starts_with("GPU 0:"), "{err}");
        let auto = open_devices(&DeviceChoice::Auto).unwrap();
        assert_eq!(auto.iter().map(|(l, _)| l.as_str()).collect::<Vec<_>>(), ["cpu"]);
    }
}
