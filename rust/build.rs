//! Records how fd2._native was built (compiler, target, profile) for `fd2 --version`.

use std::env;
use std::process::Command;

fn main() {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map_or_else(
            || "unknown".to_owned(),
            |out| String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        );
    println!("cargo:rustc-env=FD2_BUILD_RUSTC={version}");
    for (name, var) in [
        ("FD2_BUILD_TARGET", "TARGET"),
        ("FD2_BUILD_PROFILE", "PROFILE"),
        ("FD2_BUILD_OPT_LEVEL", "OPT_LEVEL"),
    ] {
        let value = env::var(var).unwrap_or_else(|_| "unknown".to_owned());
        println!("cargo:rustc-env={name}={value}");
    }
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=RUSTC");
}
