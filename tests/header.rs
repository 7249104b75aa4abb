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
