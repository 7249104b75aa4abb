//! The floors of src/ (lib.rs): each folder uses only the ones below it. Reads every source
//! file's `crate::` paths as text and fails on an upward one, naming the file and the line.
//! The one deliberate back-reference, the client holding its engine, is the only exception.

use std::fs;
use std::path::Path;

/// Bottom to top; a floor may use its own folder and any floor listed before it.
const FLOORS: [&str; 8] = ["api", "log", "cancel", "net", "budget", "client", "wait", "ffi"];

/// (file under src/, the path it may name although it is above): lib.rs explains each.
const ALLOWED_UPWARD: [(&str, &str); 1] = [("client/mod.rs", "wait::engine")];

fn floor_of(room: &str) -> usize {
    FLOORS.iter().position(|floor| *floor == room).unwrap_or_else(|| panic!("src/{room} is on no floor of FLOORS"))
}

/// The room a path under src/ belongs to: its folder, or the file's stem at the top.
fn room_of(relative: &Path) -> String {
    let first = relative.components().next().expect("a path under src/");
    let first = first.as_os_str().to_string_lossy();
    first.strip_suffix(".rs").unwrap_or(&first).to_owned()
}

/// Every .rs file under `dir`, as paths relative to `root` (src/ is a few dozen files, two folders deep).
fn sources(root: &Path, dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("src/ is readable").path();
        if path.is_dir() {
            sources(root, &path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path.strip_prefix(root).expect("under src/").to_owned());
        }
    }
}

#[test]
fn every_folder_uses_only_the_floors_below_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &root, &mut files);
    assert!(files.len() > 20, "src/ has its files");
    let mut upward = Vec::new();
    for file in files.iter().filter(|file| file.as_os_str() != "lib.rs") {
        let room = room_of(file);
        let own = floor_of(&room);
        let text = fs::read_to_string(root.join(file)).expect("sources are UTF-8");
        let shown = file.to_string_lossy().replace('\\', "/");
        for (number, line) in text.lines().enumerate() {
            for (at, _) in line.match_indices("crate::") {
                let path = &line[at + "crate::".len()..];
                let target: String = path.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                if target.is_empty() || target == room || !FLOORS.contains(&target.as_str()) {
                    continue;
                }
                let allowed = ALLOWED_UPWARD.iter().any(|(from, to)| *from == shown && path.starts_with(to));
                if floor_of(&target) > own && !allowed {
                    upward.push(format!("src/{shown}:{}: {room} uses {target}: {}", number + 1, line.trim()));
                }
            }
        }
    }
    assert!(upward.is_empty(), "imports against the floors of lib.rs:\n{}", upward.join("\n"));
}

#[test]
fn the_check_sees_an_upward_import() {
    // The rule itself, on a made-up line: net is below client.
    assert!(floor_of("net") < floor_of("client"));
    assert_eq!(room_of(Path::new("net/gate.rs")), "net");
    assert_eq!(room_of(Path::new("cancel.rs")), "cancel");
}
