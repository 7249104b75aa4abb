//! Build script: the C header, generated from the sources, and (for installation) the soname.
//!
//! The header goes to OUT_DIR, never into the source tree; `tests/header.rs` compares it with
//! the committed `include/capmonster.h` and fails when they differ (run
//! `scripts/update-header.sh` after changing the ABI).

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

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
    // The exported functions are `extern "system"` (stdcall on 32-bit Windows), which cbindgen
    // 0.29 skips without a word: it reads a copy of src/ in which they say "C", and the header
    // marks every declaration CM_CALL instead (see cbindgen.toml).
    let view = out_dir.join("header-view");
    if view.exists() {
        fs::remove_dir_all(&view).expect("the old header view can be removed");
    }
    copy_as_c(&crate_dir.join("src"), &view);
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml is valid");
    let bindings = cbindgen::Builder::new()
        .with_src(view.join("lib.rs"))
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate the header");
    let names: Vec<String> = bindings.functions.iter().map(|function| function.path().name().to_owned()).collect();
    assert!(!names.is_empty(), "cbindgen found no function: the header would be empty");
    let mut text = Vec::new();
    bindings.write(&mut text);
    let header = with_calling_convention(&String::from_utf8(text).expect("cbindgen writes UTF-8"), &names);
    fs::write(out_dir.join("capmonster.h"), header).expect("OUT_DIR is writable");
}

/// Copies the Rust sources under `from` to `to` as cbindgen is to read them (see
/// [`header_view`]). Bounded by src/'s tree (directories are not followed as links).
fn copy_as_c(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("OUT_DIR is writable");
    for entry in fs::read_dir(from).expect("src/ is readable") {
        let entry = entry.expect("src/ is readable");
        let target = to.join(entry.file_name());
        let kind = entry.file_type().expect("src/ is readable");
        if kind.is_dir() {
            copy_as_c(&entry.path(), &target);
        } else if entry.path().extension().is_some_and(|ext| ext == "rs") {
            let source = fs::read_to_string(entry.path()).expect("sources are UTF-8");
            fs::write(target, header_view(&entry.path(), &source)).expect("OUT_DIR is writable");
        }
    }
}

/// The `# Safety` section every export's doc comment ends with (clippy requires one on an
/// `unsafe` function). The header states those rules once, in its preamble (cbindgen.toml),
/// so the view leaves the section out; a rule of one function belongs in its doc's text.
const SAFETY_SECTION: [&str; 3] =
    ["///", "/// # Safety", "/// The rules at the top of include/capmonster.h, which every caller keeps."];

/// One source file as cbindgen reads it: `extern "system" fn` written `extern "C" fn`, each
/// export's [`SAFETY_SECTION`] left out, and the `opaque! {` line of each opaque type's
/// declaration dropped with its closing `}`, leaving the tuple struct, which cbindgen writes as
/// an incomplete struct (cbindgen does not expand macros). Panics on an export that is not
/// `extern "system"` (it would be cdecl on 32-bit Windows while the header declares CM_CALL)
/// and on an `unsafe` export whose doc does not end with the standard section.
fn header_view(path: &Path, source: &str) -> String {
    let lines: Vec<&str> = source.lines().collect();
    let mut keep = vec![true; lines.len()];
    let mut opaque_end: Option<String> = None;
    for (index, line) in lines.iter().enumerate() {
        let trimmed = line.trim();
        if trimmed == "#[no_mangle]" || trimmed == "#[unsafe(no_mangle)]" {
            let item = lines[index + 1..]
                .iter()
                .map(|line| line.trim())
                .find(|next| !next.starts_with("#["))
                .unwrap_or_default();
            assert!(
                item.contains("extern \"system\" fn"),
                "{}: `{item}`: an exported function must be `extern \"system\"` (stdcall on 32-bit Windows, as the header declares)",
                path.display()
            );
            if item.contains("unsafe extern") {
                let doc_end =
                    lines[..index].iter().rposition(|line| !line.trim().starts_with("#[")).map_or(0, |at| at + 1);
                let section = doc_end.saturating_sub(SAFETY_SECTION.len())..doc_end;
                assert!(
                    lines[section.clone()].iter().map(|line| line.trim()).eq(SAFETY_SECTION),
                    "{}: `{item}`: an unsafe export's doc must end with the standard `# Safety` section (SAFETY_SECTION)",
                    path.display()
                );
                keep[section].fill(false);
            }
        } else if trimmed == "opaque! {" {
            keep[index] = false;
            opaque_end = Some(format!("{}}}", &line[..line.len() - line.trim_start().len()]));
        } else if opaque_end.as_deref() == Some(*line) {
            keep[index] = false;
            opaque_end = None;
        }
    }
    let view: String = lines.iter().zip(keep).filter(|(_, keep)| *keep).map(|(line, _)| format!("{line}\n")).collect();
    view.replace("extern \"system\" fn", "extern \"C\" fn")
}

/// Puts `CM_CALL` between each function's return type and its name, where both GCC and MSVC
/// accept a calling convention (`const char *CM_CALL cm_version(void);`, the form MSVC
/// documents); cbindgen's `[fn] prefix` would go before the return type. A
/// declaration starts at column 0 (its continuation lines are indented; comments start with
/// `/`, preprocessor lines with `#`); each function must be found exactly once.
fn with_calling_convention(header: &str, names: &[String]) -> String {
    let mut found = vec![0usize; names.len()];
    let lines: Vec<String> = header
        .lines()
        .map(|line| {
            let declaration = line.starts_with(|c: char| c.is_ascii_alphabetic()) && !line.starts_with("typedef");
            if !declaration {
                return line.to_owned();
            }
            for (index, name) in names.iter().enumerate() {
                for separator in [" ", "*"] {
                    let needle = format!("{separator}{name}(");
                    if let Some(at) = line.find(&needle) {
                        found[index] += 1;
                        let split = at + separator.len();
                        return format!("{}CM_CALL {}", &line[..split], &line[split..]);
                    }
                }
            }
            line.to_owned()
        })
        .collect();
    for (name, count) in names.iter().zip(found) {
        assert_eq!(count, 1, "{name}: found {count} declarations in the header, expected 1");
    }
    // A function pointer type (the log callback) is called with the same convention:
    // `typedef void (CM_CALL *cm_log_callback)(...)`.
    let lines: Vec<String> = lines
        .into_iter()
        .map(|line| if line.starts_with("typedef") { line.replacen("(*", "(CM_CALL *", 1) } else { line })
        .collect();
    let mut out = lines.join("\n");
    if header.ends_with('\n') {
        out.push('\n');
    }
    out
}
