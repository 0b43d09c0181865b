//! `statesync serve`: store, workers and HTTP server in one process, with
//! graceful shutdown on SIGTERM or ctrl-c (stop claiming, give running jobs
//! back to the queue, end event streams, drain HTTP within
//! [`SHUTDOWN_GRACE`], exit). `--workers 0` serves the API only, for a
//! cluster whose proofs are made by `statesync worker` processes
//! ([`crate::worker`]).

use std::{
    sync::{atomic::Ordering, Arc},
    time::Duration,
};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::task::JoinHandle;

use crate::{config::ServeConfig, devices::ProvingDevice, http, service, store::sql::SqlStore};

/// How long open HTTP connections may take to finish after a shutdown
/// signal before they are closed.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);

/// Runs the service until a shutdown signal.
pub async fn serve(cfg: ServeConfig) -> Result<(), String> {
    std::fs::create_dir_all(&cfg.data_dir).map_err(|e| format!("creating {}: {e}", cfg.data_dir.display()))?;
    let store = match &cfg.database_url {
        // (the URL may hold a password: not repeated in the error)
        Some(url) => SqlStore::postgres(url, None).await.map_err(|e| format!("connecting to PostgreSQL: {e}"))?,
        None => {
            SqlStore::sqlite(&cfg.database).await.map_err(|e| format!("opening {}: {e}", cfg.database.display()))?
        }
    };
    let metrics = install_metrics()?;
    let listener = tokio::net::TcpListener::bind(cfg.bind).await.map_err(|e| format!("binding {}: {e}", cfg.bind))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let hal = statesync_prover::hal::select(cfg.backend).map_err(|e| format!("prover backend: {e}"))?;
    let hal_name = hal.name();
    if cfg.workers > 0 {
        println!("proving on {hal_name}");
    }
    let svc = Arc::new(service::Service::new(Arc::new(store), cfg.clone(), hal));
    let stop = svc.stopping.clone();
    let mut workers = vec![];
    if cfg.workers > 0 {
        let label = match svc.prover.hal().backend() {
            statesync_prover::hal::Backend::Cuda => "cuda:0".to_string(),
            other => other.to_string(),
        };
        let device = svc.add_device(label, svc.prover.clone(), cfg.workers);
        workers = spawn_loops(&svc, &device, &uuid::Uuid::new_v4().simple().to_string()[..8]);
    } else {
        match cfg.database_url {
            Some(_) => {
                println!("no proving workers (--workers 0): `statesync worker` processes on this database prove")
            }
            None => println!(
                "WARNING: no proving workers (--workers 0) and SQLite: jobs stay queued until a restart with workers"
            ),
        }
    }
    if cfg.auto_epochs && cfg.epoch_max_wait.is_some() {
        workers.push(tokio::spawn(service::run_sealer(svc.clone(), stop.clone())));
    }
    if svc.prover.srs().is_insecure() {
        println!("WARNING: proving with the INSECURE development SRS (public seed); pass --srs with ceremony params in production");
    }
    if cfg.open {
        println!("WARNING: open mode: requests are not authenticated");
    }
    println!("statesync listening on http://{addr}");
    tracing::info!(%addr, backend = %hal_name, workers = cfg.workers, "statesync started");
    svc.ready.store(true, Ordering::SeqCst);
    let app = http::router(svc.clone(), metrics);
    let signal = cancel_on_signal(stop.clone(), "no new claims, running jobs go back to the queue, event streams end");
    let grace = async {
        stop.cancelled().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
        tracing::warn!("HTTP connections still open after {SHUTDOWN_GRACE:?}: closing them");
    };
    let served = tokio::select! {
        served = axum::serve(listener, app).with_graceful_shutdown(signal) => served,
        _ = grace => Ok(()),
    };
    tracing::info!("HTTP server stopped");
    stop.cancel();
    svc.ready.store(false, Ordering::SeqCst);
    join_loops(workers).await;
    tracing::info!("statesync stopped");
    served.map_err(|e| e.to_string())
}

/// Installs the Prometheus recorder (`/metrics`).
pub(crate) fn install_metrics() -> Result<PrometheusHandle, String> {
    PrometheusBuilder::new()
        .set_buckets(&[0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0])
        .map_err(|e| e.to_string())?
        .install_recorder()
        .map_err(|e| format!("metrics: {e}"))
}

/// Spawns `device`'s proving loops, named `w-{instance}-{label}-{i}`.
pub(crate) fn spawn_loops(
    svc: &Arc<service::Service>,
    device: &Arc<ProvingDevice>,
    instance: &str,
) -> Vec<JoinHandle<()>> {
    (0..device.loops)
        .map(|i| {
            let name = format!("w-{instance}-{}-{i}", device.label.replace(':', ""));
            tokio::spawn(service::run_worker(svc.clone(), name, device.clone(), svc.stopping.clone()))
        })
        .collect()
}

/// Waits (at most 30 s each) for proving loops that were told to stop.
pub(crate) async fn join_loops(loops: Vec<JoinHandle<()>>) {
    for w in loops {
        let _ = tokio::time::timeout(Duration::from_secs(30), w).await;
    }
}

/// Cancels `stop` on SIGTERM or ctrl-c (logging `what` shutting down means).
pub(crate) async fn cancel_on_signal(stop: tokio_util::sync::CancellationToken, what: &'static str) {
    shutdown_signal().await;
    tracing::info!("shutting down: {what}");
    stop.cancel();
}

/// Resolves on SIGTERM or ctrl-c.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
