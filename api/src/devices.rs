//! Proving devices and GPU telemetry (NVML through nvml-wrapper). With no GPU
//! driver, NVML's initialization fails cleanly and the CPU backend is
//! reported; nothing here ever fails the service.

use serde::Serialize;
use statesync_prover::hal::{Backend, Hal};

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
    /// what proofs run on.
    pub fn report(&self, hal: &dyn Hal) -> DeviceReport {
        DeviceReport {
            backend: hal.backend(),
            prover: hal.name(),
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
    fn no_gpu_is_reported_not_fatal() {
        if std::path::Path::new("/dev/nvidia0").exists() {
            return; // a GPU host: NVML may well work
        }
        let d = Devices::probe();
        let hal = statesync_prover::hal::select(None).unwrap();
        let r = d.report(hal.as_ref());
        assert_eq!(r.backend, Backend::Cpu, "no GPU: the CPU backend is picked ({})", r.prover);
        assert!(r.prover.starts_with("cpu"));
        assert!(r.gpus.is_empty());
        assert!(r.nvml_error.is_some(), "without a driver NVML reports why");
        d.record_metrics();
    }
}
