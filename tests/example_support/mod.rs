//! Building an example for a test that runs it as its own process.
//!
//! `cargo test` builds the examples along with the tests, but `cargo test
//! --test NAME` does not, and would run a stale or missing one; so a test
//! (re)builds the example it needs once per run, with the given features
//! and this test's profile and target directory (a no-op when it is up to
//! date).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds `examples/<name>` with `features` and returns its path
/// (`target/<profile>/examples/<name>`, next to this test's binary).
pub fn build_example(name: &str, features: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<this test>
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["build", "--quiet", "--example", name])
        .args(["--features", features])
        .arg("--manifest-path")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .arg("--target-dir")
        .arg(profile_dir.parent().unwrap());
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    assert!(
        cmd.status().expect("cargo").success(),
        "building the {name} example failed"
    );
    let bin = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(bin.exists(), "no {}", bin.display());
    bin
}
