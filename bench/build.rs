//! Records the compiler's version and the git commit the bench is built
//! from for the benchmark reports' environment (a bench binary carried to
//! another machine reports where it came from, not where it runs).

use std::{path::Path, process::Command};

fn run(cmd: &str, args: &[&str]) -> Option<String> {
    Command::new(cmd)
        .args(args)
        .current_dir(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into()))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = run(&rustc, &["--version"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=STATESYNC_RUSTC_VERSION={version}");
    if let Some(commit) = run("git", &["rev-parse", "--short", "HEAD"]) {
        println!("cargo:rustc-env=STATESYNC_GIT_COMMIT={commit}");
    }
    // built again when HEAD moves: HEAD itself, the branch it names, packed refs
    if let Some(dir) = run("git", &["rev-parse", "--absolute-git-dir"]) {
        let branch = run("git", &["symbolic-ref", "-q", "HEAD"]);
        for file in ["HEAD", "packed-refs"].into_iter().map(String::from).chain(branch) {
            let path = Path::new(&dir).join(file);
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    println!("cargo:rerun-if-env-changed=RUSTC");
    println!("cargo:rerun-if-changed=build.rs");
}
