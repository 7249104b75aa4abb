//! What the library repairs in a file it owns, rather than give it up: a file new, of the wrong
//! size or with a damaged header is rebuilt empty when it is opened (said in the open's note);
//! a count over the limit reads as spent (`slot.rs`), never as fresh; a file cut short later is
//! restored before it is touched (`mapping.rs`); and a slot left busy by a process killed while
//! filling it is taken again under the lock (`insert.rs`).

use std::fs::File;
use std::io;
use std::sync::Mutex;

use crate::budget::file::layout::{header, FILE_BYTES};
use crate::budget::file::lock::Locked;
use crate::budget::file::mapping::{reserve, Mapping};
use crate::budget::file::BudgetFile;

impl BudgetFile {
    /// Under the lock: the file made `FILE_BYTES` long with its blocks reserved, mapped, and
    /// rebuilt empty when it was new or damaged (wrong size or header). Returns the mapping and
    /// what was repaired. Never shrinks the file below its size: others may have it mapped.
    pub(super) fn map_checked(file: &File) -> io::Result<(Mapping, Option<String>)> {
        // No other thread has this open file yet: a mutex of its own.
        let alone = Mutex::new(());
        let _lock = Locked::new(file, &alone)?;
        let size = file.metadata()?.len();
        if size != FILE_BYTES {
            file.set_len(FILE_BYTES)?;
        }
        reserve(file)?;
        let map = Mapping::new(file)?;
        if size == FILE_BYTES && map.header() == header() {
            return Ok((map, None));
        }
        map.rebuild();
        Ok((
            map,
            match size {
                0 => None,
                FILE_BYTES => Some("its header was damaged; it was rebuilt empty".to_owned()),
                other => Some(format!("it was {other} bytes, not {FILE_BYTES}; it was rebuilt empty")),
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::atomic::Ordering;

    use crate::api::REQUESTS_PER_TASK;
    use crate::budget::admission::Admission::{Granted, Spent};
    #[cfg(not(windows))]
    use crate::budget::file::layout::FILE_BYTES;
    use crate::budget::file::slot::{Held, State, BUSY};
    use crate::budget::file::testing::{scratch, slot_of};
    use crate::budget::file::BudgetFile;
    use crate::budget::key::KeyDigest;

    #[test]
    fn damaged_files_are_rebuilt_and_counts_over_the_limit_read_as_spent() {
        let path = scratch("damaged");
        std::fs::write(&path, b"not a budget file").unwrap();
        let (file, note) = BudgetFile::open(&path, false).unwrap();
        assert!(note.unwrap().contains("rebuilt"));
        let digest = KeyDigest::of("key", "x");
        assert!(file.take(digest, 9).unwrap().is_granted());
        // Damage the slot's count: over the limit reads as spent, never as fresh.
        let slot = slot_of(&file, digest, 9);
        let state = slot.state();
        slot.0[2].store(State::new(200, state.generation(), state.last_used()).0, Ordering::Relaxed);
        assert_eq!(file.take(digest, 9).unwrap(), Spent { sent: REQUESTS_PER_TASK });
        assert_eq!(file.sent(digest, 9).unwrap(), REQUESTS_PER_TASK);
        // A damaged header: the next process to open the file rebuilds it.
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().write_all(b"garbage!").unwrap();
        let (again, note) = BudgetFile::open(&path, false).unwrap();
        assert!(note.unwrap().contains("header was damaged"));
        assert_eq!(again.sent(digest, 9).unwrap(), 0);
        // Cut short behind its back: restored before the mapping is touched (no SIGBUS).
        // Windows refuses to cut short a mapped file (ERROR_USER_MAPPED_FILE).
        let cut = std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(100);
        #[cfg(windows)]
        assert_eq!(cut.unwrap_err().raw_os_error(), Some(1224));
        #[cfg(not(windows))]
        {
            cut.unwrap();
            assert_eq!(file.take(digest, 9).unwrap(), Granted { nth: 1 });
            assert_eq!(std::fs::metadata(&path).unwrap().len(), FILE_BYTES);
            assert_eq!(again.take(digest, 9).unwrap(), Granted { nth: 2 }, "both mappings see the restored file");
        }
    }

    #[test]
    fn a_slot_left_busy_by_a_killed_process_is_reused_and_changes_of_hands_are_seen() {
        let path = scratch("busy");
        let (file, _) = BudgetFile::open(&path, false).unwrap();
        let digest = KeyDigest::of("key", "busy");
        assert_eq!(file.take(digest, 1).unwrap(), Granted { nth: 1 });
        // A process killed while giving the slot to another task leaves it busy, half filled.
        let slot = slot_of(&file, digest, 1);
        let found = slot.state();
        slot.0[2].store(State::new(BUSY, found.generation() + 1, found.last_used()).0, Ordering::Relaxed);
        assert!(matches!(slot.holds(digest, 1), Held::No));
        assert_eq!(file.sent(digest, 1).unwrap(), 0);
        assert_eq!(file.take(digest, 1).unwrap(), Granted { nth: 1 }, "the busy slot is claimed again under the lock");
        // A count on a slot that changed hands since it was found is refused: look again.
        let slot = slot_of(&file, digest, 1);
        let found = slot.state();
        assert!(slot.claim(found, KeyDigest::of("other", "busy"), 1, found.last_used()));
        assert_eq!(slot.count(found, found.last_used()), None);
        assert!(!slot.claim(found, digest, 1, found.last_used()), "a stale claim is refused too");
    }
}
