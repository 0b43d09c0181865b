//! `statesync serve`: store, workers and HTTP server in one process, with
//! graceful shutdown on SIGTERM or ctrl-c (stop claiming, give running jobs
//! back to the queue, end event streams, drain HTTP within
//! [`SHUTDOWN_GRACE`], exit).

use std::{
    sync::{atomic::Ordering, Arc},
    time::Duration,
};

use metrics_exporter_prometheus::PrometheusBuilder;

use crate::{config::ServeConfig, http, service, store::sql::SqlStore};

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
    let metrics = PrometheusBuilder::new()
        .set_buckets(&[0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0])
        .map_err(|e| e.to_string())?
        .install_recorder()
        .map_err(|e| format!("metrics: {e}"))?;
    let listener = tokio::net::TcpListener::bind(cfg.bind).await.map_err(|e| format!("binding {}: {e}", cfg.bind))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let hal = statesync_prover::hal::select(cfg.backend).map_err(|e| format!("prover backend: {e}"))?;
    let hal_name = hal.name();
    println!("proving on {hal_name}");
    let svc = Arc::new(service::Service::new(Arc::new(store), cfg.clone(), hal));
    let stop = svc.stopping.clone();
    let instance = uuid::Uuid::new_v4().simple().to_string();
    let workers: Vec<_> = (0..cfg.workers)
        .map(|i| tokio::spawn(service::run_worker(svc.clone(), format!("w-{}-{i}", &instance[..8]), stop.clone())))
        .collect();
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
    let signal = {
        let stop = stop.clone();
        async move {
            shutdown_signal().await;
            tracing::info!("shutting down: no new claims, running jobs go back to the queue, event streams end");
            stop.cancel();
        }
    };
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
    for w in workers {
        let _ = tokio::time::timeout(Duration::from_secs(30), w).await;
    }
    tracing::info!("statesync stopped");
    served.map_err(|e| e.to_string())
}

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
