//! Build script: the C header, generated from the sources, and (for installation) the soname.
//!
//! The header goes to OUT_DIR, never into the source tree; `tests/header.rs` compares it with
//! the committed `include/capmonster.h` and fails when they differ (run
//! `scripts/update-header.sh` after changing the ABI).

use std::env;
use std::path::PathBuf;

fn main() {
    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));

    // scripts/install.sh builds with CAPMONSTER_SONAME=1 into its own target directory: the
    // installed library is then found by its ABI version (libcapmonster.so.0.2) by the programs
    // linked to it. Before 1.0 a minor version may change the ABI (0.2 added the setters'
    // out_result), so the soname carries it: a program built for 0.1 never loads 0.2. The
    // in-tree build has no soname, so `-Ltarget/release -lcapmonster` works without symlinks.
    println!("cargo:rerun-if-env-changed=CAPMONSTER_SONAME");
    if env::var_os("CAPMONSTER_SONAME").is_some() && env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        let major = env::var("CARGO_PKG_VERSION_MAJOR").expect("cargo sets the version");
        let minor = env::var("CARGO_PKG_VERSION_MINOR").expect("cargo sets the version");
        let abi = if major == "0" { format!("0.{minor}") } else { major };
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libcapmonster.so.{abi}");
    }

    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml is valid");
    cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate the header")
        .write_to_file(out_dir.join("capmonster.h"));
}
