//! The committed header must be exactly what cbindgen generates from the sources now
//! (build.rs writes it to OUT_DIR). Fix a failure with `scripts/update-header.sh`.

#[test]
fn committed_header_is_current() {
    let generated = include_str!(concat!(env!("OUT_DIR"), "/capmonster.h"));
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/include/capmonster.h"))
        .expect("include/capmonster.h is committed");
    assert!(
        generated == committed,
        "include/capmonster.h is stale: run scripts/update-header.sh and commit the result"
    );
}

/// Every `CM_ERR_*` constant of the header is a code of the core with the same number and
/// name, and every code of the core is in the header: the table in src/api/codes.rs is complete.
#[test]
fn every_header_code_is_a_core_code() {
    let header = include_str!(concat!(env!("OUT_DIR"), "/capmonster.h"));
    let defined: Vec<(String, i32)> = header
        .lines()
        .filter_map(|line| line.strip_prefix("#define CM_ERR_"))
        .map(|rest| {
            let (name, value) = rest.split_once(' ').expect("#define NAME VALUE");
            (format!("CM_ERR_{name}"), value.trim().parse().expect("a number"))
        })
        .collect();
    let core: Vec<(String, i32)> =
        capmonster::Code::ALL.iter().map(|code| (code.name().to_owned(), *code as i32)).collect();
    assert_eq!(defined, core);
}
