//! Builds the kernels the three ways of DESIGN.md §5:
//! 1. feature `cuda` and nvcc found (`NVCC`, else PATH): PTX for sm_80 and
//!    sm_90 of every module, warnings as errors, and the SASS (cubin)
//!    assembled from it, both embedded (cfg `ss_ptx`);
//! 2. always: each module of `cuda/` flattened into one self-contained source
//!    (local `#include`s inlined) in OUT_DIR, embedded for NVRTC at run time;
//! 3. always: the CPU SIMT emulator, `emu/emu.cpp` with the same sources,
//!    compiled by the host C++ compiler and linked in.
use std::collections::HashSet;
use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The modules: one `cuda/<name>.cu` each (also listed in src/registry.rs).
const MODULES: &[&str] = &["msm", "ntt", "poly", "selftest"];
const ARCHS: &[&str] = &["sm_80", "sm_90"];

fn flatten(path: &Path, seen: &mut HashSet<PathBuf>, out: &mut String) {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#pragma once") {
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix("#include \"") {
            let name = rest.split('"').next().unwrap_or_default();
            let dep = path.parent().expect("source has a directory").join(name);
            if dep.exists() {
                if seen.insert(dep.clone()) {
                    flatten(&dep, seen, out);
                }
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
}

fn nvcc() -> Option<PathBuf> {
    if let Some(p) = env::var_os("NVCC") {
        return Some(PathBuf::from(p));
    }
    env::split_paths(&env::var_os("PATH")?).map(|d| d.join("nvcc")).find(|p| p.is_file())
}

/// Runs nvcc with `flags` on every module for every architecture, all at
/// once (the compiles are independent and each takes seconds), from
/// `input(module, arch)` to `output(module, arch)`.
fn nvcc_each(
    nvcc: &Path,
    flags: &[&str],
    input: impl Fn(&str, &str) -> PathBuf,
    output: impl Fn(&str, &str) -> PathBuf,
) {
    let mut jobs = Vec::new();
    for m in MODULES {
        for arch in ARCHS {
            let (from, to) = (input(m, arch), output(m, arch));
            let child = Command::new(nvcc)
                .args(flags)
                .arg(format!("-arch={arch}"))
                .arg("-o")
                .arg(&to)
                .arg(&from)
                .spawn()
                .unwrap_or_else(|e| panic!("running {}: {e}", nvcc.display()));
            jobs.push((from, to, child));
        }
    }
    for (from, to, mut child) in jobs {
        let status = child.wait().expect("waiting for nvcc");
        assert!(status.success(), "nvcc failed on {} (to {})", from.display(), to.display());
    }
}

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    println!("cargo:rerun-if-changed=cuda");
    println!("cargo:rerun-if-changed=emu");
    println!("cargo:rerun-if-env-changed=NVCC");
    println!("cargo:rerun-if-env-changed=PATH");
    println!("cargo::rustc-check-cfg=cfg(ss_ptx)");

    for m in MODULES {
        let mut src = String::new();
        flatten(&Path::new("cuda").join(format!("{m}.cu")), &mut HashSet::new(), &mut src);
        fs::write(out.join(format!("{m}.cu")), src).expect("write flattened source");
    }

    cc::Build::new()
        .cpp(true)
        .std("c++17")
        .file("emu/emu.cpp")
        .include("emu")
        .include("cuda")
        .opt_level(3)
        .flag("-Wno-unknown-pragmas")
        .warnings_into_errors(true)
        .compile("statesync_emu");

    if env::var_os("CARGO_FEATURE_CUDA").is_none() {
        return;
    }
    let Some(nvcc) = nvcc() else {
        println!("cargo:warning=feature `cuda`: nvcc not found (NVCC or PATH); kernels will be compiled by NVRTC at run time");
        return;
    };
    // PTX of every module for each architecture, warnings as errors; then
    // the SASS (cubins) assembled from that PTX: what the driver loads
    // first, as it needs no JIT, so it also runs on a driver older than this
    // nvcc (whose PTX such a driver refuses).
    nvcc_each(
        &nvcc,
        &["-ptx", "-std=c++17", "-Werror", "all-warnings"],
        |m, _| out.join(format!("{m}.cu")),
        |m, arch| out.join(format!("{m}.{arch}.ptx")),
    );
    nvcc_each(
        &nvcc,
        &["-cubin"],
        |m, arch| out.join(format!("{m}.{arch}.ptx")),
        |m, arch| out.join(format!("{m}.{arch}.cubin")),
    );
    println!("cargo:rustc-cfg=ss_ptx");
}
