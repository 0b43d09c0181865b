//! The benchmark CLI end to end at tiny sizes: the JSON schema, one row per
//! operation, size and backend, the SVG chart, and exit code 2 for invalid
//! options.

use std::process::Command;

use serde_json::Value;

fn bench(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_statesync-bench")).args(args).output().expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn report(stdout: &str, benchmark: &str) -> Value {
    let v: Value = serde_json::from_str(stdout).expect("one JSON object");
    assert_eq!(v["benchmark"], benchmark);
    let env = &v["environment"];
    assert!(env["threads"].as_u64().unwrap() >= 1);
    assert!(env["crates"]["halo2-axiom"].as_str().unwrap().starts_with("0."), "{env}");
    assert!(env["gpus"].is_array());
    assert_eq!(v["report"]["schema"], 1);
    v["report"].clone()
}

#[test]
fn msm_and_ntt_compare_every_backend_and_plot() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let svg = dir.path().join("msm.svg");
    let (code, out, err) = bench(&[
        "msm",
        "--sizes",
        "5,4",
        "--reps",
        "2",
        "--backend",
        "cpu,emu",
        "--data-dir",
        data,
        "--json",
        "--plot",
        svg.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.is_empty(), "--json prints no progress: {err}");
    let r = report(&out, "msm");
    assert_eq!(r["hals"].as_array().unwrap().len(), 2);
    let rows = r["rows"].as_array().unwrap();
    // sizes sorted, each on both backends
    let keys: Vec<(u64, &str)> =
        rows.iter().map(|x| (x["k"].as_u64().unwrap(), x["backend"].as_str().unwrap())).collect();
    assert_eq!(keys, [(4, "cpu"), (4, "emu"), (5, "cpu"), (5, "emu")]);
    for row in rows {
        assert_eq!(row["op"], "msm");
        for fig in ["baseline_s", "ours_s", "ratio"] {
            assert_eq!(row[fig]["n"], 2, "{row}");
            assert!(row[fig]["min"].as_f64().unwrap() > 0.0);
            assert!(row[fig]["min"].as_f64() <= row[fig]["max"].as_f64());
        }
    }
    let chart = std::fs::read_to_string(&svg).unwrap();
    for label in ["msm: halo2curves", "msm: ours (cpu)", "msm: ours (emu)"] {
        assert!(chart.contains(label), "{label} missing from the chart");
    }

    let (code, out, err) = bench(&["ntt", "--sizes", "4", "--reps", "1", "--backend", "emu", "--json"]);
    assert_eq!(code, 0, "{err}");
    let r = report(&out, "ntt");
    let ops: Vec<&str> = r["rows"].as_array().unwrap().iter().map(|x| x["op"].as_str().unwrap()).collect();
    assert_eq!(ops, ["ntt forward", "ntt inverse", "ntt coset"]);
}

#[test]
fn invalid_options_exit_2_before_running() {
    for args in [
        &["prove", "--shape", "c0-d3"][..],
        &["prove", "--shape", "/nonexistent/chain.json"],
        &["msm", "--sizes", "3"],
        &["msm", "--backend", "gpu"],
        &["aggregate", "--n", "1"],
        &["service"],
        &["service", "--spawn", "--duration", "0"],
        &["service", "--url", "http://127.0.0.1:9", "--database", "postgres"],
        &["service", "--spawn", "--scaling", "1,0"],
        &["kernels", "--plot", "k.svg"],
        &["msm", "--json", "--markdown"],
    ] {
        let (code, out, err) = bench(args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.contains("error"), "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}: {out}");
    }
}

#[test]
fn gpu_check_without_a_gpu_says_so_and_exits_2() {
    if std::path::Path::new("/dev/nvidia0").exists() {
        return; // a GPU host: gpu-check would run for minutes
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gpu-check.json");
    let (code, out, err) = bench(&["gpu-check", "--json", "--json-file", file.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no usable GPU") && err.contains("nothing was run"), "{err}");
    let v: Value = serde_json::from_str(&out).expect("one JSON object");
    assert_eq!(v["benchmark"], "gpu-check");
    assert!(v["no_gpu"]["reason"].as_str().unwrap().contains("no CUDA GPU"), "{v}");
    assert!(v["report"].is_null());
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(written, v, "--json-file holds what --json prints");
    // Invalid options are refused before the GPU is looked for.
    let (code, _, err) = bench(&["gpu-check", "--shape", "c0-d3"]);
    assert_eq!(code, 2);
    assert!(err.contains("--shape c0-d3"), "{err}");
}

#[test]
fn prove_reports_the_device_traffic_of_a_proof() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let args = ["prove", "--shape", "c1-d3", "--reps", "1", "--backend", "cpu,emu", "--data-dir", data, "--json"];
    // Every operation on the (emulated) device, however small.
    let out = Command::new(env!("CARGO_BIN_EXE_statesync-bench"))
        .args(args)
        .env("STATESYNC_CUDA_CPU_BELOW", "0")
        .output()
        .expect("runs");
    let (code, out, err) =
        (out.status.code(), String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(code, Some(0), "{err}");
    let r = report(&out, "prove");
    let shape = &r["shapes"][0];
    assert_eq!(shape["transitions"], 1);
    let traffic = shape["device_traffic"].as_array().unwrap();
    assert_eq!(traffic.len(), 1, "the CPU backend has no device: {traffic:?}");
    assert_eq!(traffic[0]["backend"], "emu");
    let total = &traffic[0]["total"];
    let ops = traffic[0]["operations"].as_object().unwrap();
    for field in ["calls", "launches", "host_to_device_bytes", "device_to_host_bytes"] {
        let sum: u64 = ops.values().map(|o| o[field].as_u64().unwrap()).sum();
        assert_eq!(total[field].as_u64().unwrap(), sum, "{field}: the total is the sum of the operations");
        assert!(sum > 0, "{field}");
    }
    for op in [
        "commit",
        "commit_and_interpolate",
        "lagrange_to_coeff",
        "coeff_to_extended_parts",
        "quotient_to_coeff",
        "batch_invert",
    ] {
        assert!(ops[op]["launches"].as_u64().unwrap() > 0, "{op} ran on the device");
    }
}
