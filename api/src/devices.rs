//! Proving devices and GPU telemetry (NVML through nvml-wrapper). With no GPU
//! driver, NVML's initialization fails cleanly and the CPU backend is
//! reported; nothing here ever fails the service.
//!
//! Each device a process proves on is a [`ProvingDevice`]: the prover on
//! that device's Hal, and its health. A device whose attempts fail with
//! device errors [`DEVICE_FAILURE_LIMIT`] times in a row leaves the
//! rotation: its proving loops stop claiming, `/v1/devices` and the
//! `statesync_device_in_rotation` gauge say so, and the process's other
//! devices go on.

use std::sync::{
    atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering},
    Arc, Mutex,
};

use serde::Serialize;
use statesync_prover::{
    hal::{Backend, Hal},
    Prover,
};

/// Device errors in a row (out of memory, a failed launch, a lost device)
/// after which a device leaves the rotation until the process restarts.
pub const DEVICE_FAILURE_LIMIT: u32 = 3;

/// A device this process proves on.
#[derive(Debug)]
pub struct ProvingDevice {
    /// Its label in logs, metrics and `/v1/devices`: `cpu`, `emu`, `cuda:N`.
    pub label: String,
    /// The prover on this device's Hal.
    pub prover: Prover,
    /// Proving loops on it.
    pub loops: usize,
    failures_in_a_row: AtomicU32,
    device_failures: AtomicU64,
    retired: AtomicBool,
    last_error: Mutex<Option<String>>,
}

/// A proving device's health, as `/v1/devices` shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProvingDeviceReport {
    /// Label (`cpu`, `emu`, `cuda:N`).
    pub label: String,
    /// The Hal, by name.
    pub prover: String,
    /// Proving loops on it.
    pub loops: usize,
    /// Whether its loops still claim work.
    pub in_rotation: bool,
    /// Device errors since its last proof.
    pub failures_in_a_row: u32,
    /// Device errors in all.
    pub device_failures: u64,
    /// The last device error.
    pub last_error: Option<String>,
}

impl ProvingDevice {
    /// A device in rotation, proving with `prover` on `loops` loops.
    pub fn new(label: impl Into<String>, prover: Prover, loops: usize) -> Arc<Self> {
        let label = label.into();
        metrics::gauge!("statesync_device_in_rotation", "device" => label.clone()).set(1.0);
        Arc::new(ProvingDevice {
            label,
            prover,
            loops,
            failures_in_a_row: AtomicU32::new(0),
            device_failures: AtomicU64::new(0),
            retired: AtomicBool::new(false),
            last_error: Mutex::new(None),
        })
    }

    /// Whether its loops may claim work.
    pub fn in_rotation(&self) -> bool {
        !self.retired.load(Ordering::SeqCst)
    }

    /// Records an attempt that failed with a device error; true when this
    /// one took the device out of the rotation.
    pub fn device_failed(&self, error: &str) -> bool {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(error.to_string());
        self.device_failures.fetch_add(1, Ordering::SeqCst);
        metrics::counter!("statesync_device_failures_total", "device" => self.label.clone()).increment(1);
        let in_a_row = self.failures_in_a_row.fetch_add(1, Ordering::SeqCst) + 1;
        if in_a_row >= DEVICE_FAILURE_LIMIT && !self.retired.swap(true, Ordering::SeqCst) {
            metrics::gauge!("statesync_device_in_rotation", "device" => self.label.clone()).set(0.0);
            tracing::error!(device = %self.label, in_a_row, "device out of rotation after repeated device errors: {error}");
            return true;
        }
        false
    }

    /// How long its loops wait before the next claim: a second per device
    /// error in a row, so that other devices take the work meanwhile.
    pub fn cooldown(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.failures_in_a_row.load(Ordering::SeqCst).into())
    }

    /// Records a proof made on it.
    pub fn succeeded(&self) {
        self.failures_in_a_row.store(0, Ordering::SeqCst);
    }

    /// Its health.
    pub fn report(&self) -> ProvingDeviceReport {
        ProvingDeviceReport {
            label: self.label.clone(),
            prover: self.prover.hal().name(),
            loops: self.loops,
            in_rotation: self.in_rotation(),
            failures_in_a_row: self.failures_in_a_row.load(Ordering::SeqCst),
            device_failures: self.device_failures.load(Ordering::SeqCst),
            last_error: self.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        }
    }
}

/// One GPU as NVML sees it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Gpu {
    /// NVML index.
    pub index: u32,
    /// Model name.
    pub name: String,
    /// Total memory, bytes.
    pub memory_total: Option<u64>,
    /// Used memory, bytes.
    pub memory_used: Option<u64>,
    /// GPU utilization, percent.
    pub utilization: Option<u32>,
    /// Temperature, degrees Celsius.
    pub temperature_c: Option<u32>,
    /// Power draw, watts.
    pub power_w: Option<f64>,
}

/// What the service proves on.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceReport {
    /// The proving backend in use: `cpu`, `cuda` or `emu`.
    pub backend: Backend,
    /// The prover's Hal, by name (back end and device).
    pub prover: String,
    /// The devices this process proves on, with their health (empty on an
    /// API node without proving loops).
    pub proving: Vec<ProvingDeviceReport>,
    /// GPUs found by NVML.
    pub gpus: Vec<Gpu>,
    /// Why NVML is unavailable, if it is.
    pub nvml_error: Option<String>,
    /// CPU threads.
    pub cpu_threads: usize,
}

/// NVML, if it initialized.
pub struct Devices {
    nvml: Result<nvml_wrapper::Nvml, String>,
}

impl std::fmt::Debug for Devices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Devices").field("nvml", &self.nvml.as_ref().map(|_| "initialized")).finish()
    }
}

impl Devices {
    /// Probes NVML once.
    pub fn probe() -> Self {
        Devices { nvml: nvml_wrapper::Nvml::init().map_err(|e| e.to_string()) }
    }

    /// Why NVML is unavailable, if it is.
    pub fn nvml_error(&self) -> Option<String> {
        self.nvml.as_ref().err().cloned()
    }

    /// Current GPU readings (empty without NVML).
    pub fn gpus(&self) -> Vec<Gpu> {
        let Ok(nvml) = &self.nvml else { return vec![] };
        let count = nvml.device_count().unwrap_or(0);
        (0..count)
            .filter_map(|i| {
                let d = nvml.device_by_index(i).ok()?;
                let mem = d.memory_info().ok();
                Some(Gpu {
                    index: i,
                    name: d.name().unwrap_or_else(|_| "unknown".into()),
                    memory_total: mem.as_ref().map(|m| m.total),
                    memory_used: mem.as_ref().map(|m| m.used),
                    utilization: d.utilization_rates().ok().map(|u| u.gpu),
                    temperature_c: d.temperature(nvml_wrapper::enum_wrappers::device::TemperatureSensor::Gpu).ok(),
                    power_w: d.power_usage().ok().map(|mw| mw as f64 / 1000.0),
                })
            })
            .collect()
    }

    /// The report of `GET /v1/devices` and `statesync devices`; `hal` is
    /// the process's main prover's, `proving` its proving devices.
    pub fn report(&self, hal: &dyn Hal, proving: &[Arc<ProvingDevice>]) -> DeviceReport {
        DeviceReport {
            backend: hal.backend(),
            prover: hal.name(),
            proving: proving.iter().map(|d| d.report()).collect(),
            gpus: self.gpus(),
            nvml_error: self.nvml_error(),
            cpu_threads: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        }
    }

    /// Sets the GPU gauges of `/metrics`.
    pub fn record_metrics(&self) {
        for g in self.gpus() {
            let labels = [("gpu", g.index.to_string()), ("name", g.name.clone())];
            if let Some(v) = g.memory_used {
                metrics::gauge!("statesync_gpu_memory_used_bytes", &labels).set(v as f64);
            }
            if let Some(v) = g.memory_total {
                metrics::gauge!("statesync_gpu_memory_total_bytes", &labels).set(v as f64);
            }
            if let Some(v) = g.utilization {
                metrics::gauge!("statesync_gpu_utilization_percent", &labels).set(v as f64);
            }
            if let Some(v) = g.temperature_c {
                metrics::gauge!("statesync_gpu_temperature_celsius", &labels).set(v as f64);
            }
            if let Some(v) = g.power_w {
                metrics::gauge!("statesync_gpu_power_watts", &labels).set(v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_device_errors_take_a_device_out_of_rotation_and_a_proof_resets_the_count() {
        let prover = Prover::in_cache_dir(
            None,
            std::path::Path::new("unused"),
            std::sync::Arc::new(statesync_prover::hal::CpuHal),
        );
        let d = ProvingDevice::new("cuda:7", prover, 2);
        assert!(d.in_rotation());
        assert!(!d.device_failed("out of memory"));
        assert_eq!(d.cooldown(), std::time::Duration::from_secs(1));
        d.succeeded();
        assert_eq!(d.cooldown(), std::time::Duration::ZERO, "a proof in between resets the count");
        for i in 1..DEVICE_FAILURE_LIMIT {
            assert!(!d.device_failed("launch failed"), "error {i} in a row");
        }
        assert!(d.device_failed("lost"), "the limit takes it out");
        assert!(!d.in_rotation());
        assert!(!d.device_failed("lost"), "out once");
        let r = d.report();
        assert_eq!((r.in_rotation, r.loops, r.device_failures), (false, 2, u64::from(DEVICE_FAILURE_LIMIT) + 2));
        assert_eq!(r.last_error.as_deref(), Some("lost"));
    }

    #[test]
    fn no_gpu_is_reported_not_fatal() {
        if std::path::Path::new("/dev/nvidia0").exists() {
            return; // a GPU host: NVML may well work
        }
        let d = Devices::probe();
        let hal = statesync_prover::hal::select(None).unwrap();
        let r = d.report(hal.as_ref(), &[]);
        assert_eq!(r.backend, Backend::Cpu, "no GPU: the CPU backend is picked ({})", r.prover);
        assert!(r.prover.starts_with("cpu"));
        assert!(r.gpus.is_empty());
        assert!(r.nvml_error.is_some(), "without a driver NVML reports why");
        d.record_metrics();
    }
}
