//! The account guard's stops in the shared file (`crate::budget::guard`), after the table:
//! a 64-byte area header whose first word counts the records in use, then [`STOP_RECORDS`]
//! records of [`RECORD_WORDS`] words, one per (key digest, stop); a proxy stop's record is
//! keyed by its proxy's scope (`guard::proxy_scope`), a digest, never the address.
//!
//! Reading is lock-free: a call of a key with no stop reads the count (one word: no stop kept
//! anywhere, the usual case; records that only count answers are not in it) or scans the
//! records' key words. A record is read under a sequence
//! word (odd while it is written), and read again when that changed meanwhile. Every change is
//! made under the file's lock, so that exactly one process hands out a stop's probe.
//!
//! Repair: a record left odd (its writer killed mid-write), of an unknown stop or with lengths
//! out of bounds is not believed; the next change under the lock frees it, and the count is
//! recounted at every change.

use std::io;
use std::sync::atomic::{fence, AtomicU64, Ordering};

use crate::budget::file::BudgetFile;
use crate::budget::guard::policy::{Stop, StopState, BAN_LENGTH, MAX_CODE_BYTES, MAX_DESCRIPTION_BYTES};
use crate::budget::key::KeyDigest;

/// Records of stops the file holds: more keys stopped at once than one user's programs have.
/// A stop beyond them first takes the record of a stop quiet for a ban's length; if none, it is
/// not kept (its calls go out as without a guard). Proxy stops take at most
/// `PROXY_RECORDS` of them and only ever free or quiet proxy records, so that many banned
/// proxies at once never take the place of a key's stop.
pub const STOP_RECORDS: usize = 256;
/// Most records proxy stops take (half): a farm with more banned proxies at once keeps
/// the first ones; the next are kept when those have been quiet for a ban's length.
pub const PROXY_RECORDS: usize = STOP_RECORDS / 2;
/// Words of a record (384 bytes).
pub(super) const RECORD_WORDS: usize = 48;
/// The area: its header, then the records.
pub(super) const AREA_BYTES: usize = 64 + STOP_RECORDS * RECORD_WORDS * 8;

const KEY: usize = 0;
const WHICH: usize = 1;
const SEQUENCE: usize = 2;
const SINCE: usize = 3;
const UNTIL: usize = 4;
const PROBE_UNTIL: usize = 5;
const RENEWALS: usize = 6;
/// Bits 0-15 the code's length, 16-31 the description's, bit 32 whether there is one.
const LENGTHS: usize = 7;
const CODE: usize = 8;
const DESCRIPTION: usize = CODE + MAX_CODE_BYTES / 8;
/// The process id of the probe's lease (0: none or unknown).
const PROBE_PID: usize = DESCRIPTION + MAX_DESCRIPTION_BYTES / 8;
const _: () = assert!(PROBE_PID < RECORD_WORDS);

/// Times a reader looks again at a record being written before it reads under the lock.
const OPTIMISTIC_READS: usize = 8;

/// The stop's number in a record's `WHICH` word (0: a free record).
fn which(stop: Stop) -> u64 {
    stop.index() as u64 + 1
}

impl BudgetFile {
    /// The area's words: the count, then the records.
    fn stop_words(&self) -> (&AtomicU64, &[AtomicU64]) {
        let words = self.map.words();
        let area = &words[words.len() - AREA_BYTES / 8..];
        (&area[0], &area[8..])
    }

    fn record(&self, index: usize) -> &[AtomicU64] {
        &self.stop_words().1[index * RECORD_WORDS..(index + 1) * RECORD_WORDS]
    }

    /// The record that holds the key's stop, if one does.
    fn find(&self, key: KeyDigest, stop: Stop) -> Option<usize> {
        (0..STOP_RECORDS).find(|&index| {
            let record = self.record(index);
            record[KEY].load(Ordering::Acquire) == key.value() && record[WHICH].load(Ordering::Acquire) == which(stop)
        })
    }

    /// Whether any stop may be kept: one word, read after the check every access of the
    /// mapping makes (this word is at the file's end, the first part a cut would take).
    pub fn any_stop(&self) -> io::Result<bool> {
        self.restore_if_cut_short()?;
        Ok(self.stops_kept())
    }

    /// [`any_stop`](BudgetFile::any_stop) for a caller that made the check just now.
    pub(super) fn stops_kept(&self) -> bool {
        self.stop_words().0.load(Ordering::Acquire) > 0
    }

    /// The key's stop, if the file keeps one.
    pub fn stop(&self, key: KeyDigest, stop: Stop) -> io::Result<Option<StopState>> {
        self.restore_if_cut_short()?;
        let Some(index) = self.find(key, stop) else { return Ok(None) };
        for _ in 0..OPTIMISTIC_READS {
            if let Some(read) = read_consistent(self.record(index), key, stop) {
                return Ok(read);
            }
            std::hint::spin_loop();
        }
        let _lock = self.lock()?;
        Ok(self.find(key, stop).and_then(|index| read_record(self.record(index))))
    }

    /// The stop a record holds, read as [`stop`](BudgetFile::stop) reads it, lock-free (for a
    /// [`snapshot`](BudgetFile::snapshot)): `None` when the record is free, damaged or being
    /// written.
    pub(super) fn stop_in_record(&self, index: usize) -> Option<(KeyDigest, Stop, StopState)> {
        let record = self.record(index);
        let key = KeyDigest::from_value(record[KEY].load(Ordering::Acquire));
        let stop = *Stop::ALL.get((record[WHICH].load(Ordering::Acquire) as usize).checked_sub(1)?)?;
        read_consistent(record, key, stop).flatten().map(|state| (key, stop, state))
    }

    /// Changes the key's stop under the file's lock (see `guard::Store::update`).
    pub fn update_stop(
        &self,
        key: KeyDigest,
        stop: Stop,
        change: &mut dyn FnMut(Option<StopState>) -> Option<StopState>,
    ) -> io::Result<()> {
        self.restore_if_cut_short()?;
        let _lock = self.lock()?;
        self.free_damaged();
        let found = self.find(key, stop);
        let next = change(found.and_then(|index| read_record(self.record(index))));
        match (found, next) {
            (Some(index), None) => clear(self.record(index)),
            (Some(index), Some(state)) => write(self.record(index), key, stop, &state),
            (None, None) => {}
            (None, Some(state)) => {
                if let Some(index) = self.free_record(stop, &state) {
                    write(self.record(index), key, stop, &state);
                }
            }
        }
        // Records that only count answers (`StopState::counting`) hold nothing back: a call
        // need not look for them.
        let used = (0..STOP_RECORDS)
            .filter(|&index| {
                let record = self.record(index);
                record[WHICH].load(Ordering::Relaxed) != 0 && record[UNTIL].load(Ordering::Relaxed) != 0
            })
            .count();
        self.stop_words().0.store(used as u64, Ordering::Release);
        Ok(())
    }

    /// Under the lock: a free record, else one whose stop has been quiet for a ban's length.
    /// A proxy stop takes a free record only while proxies hold fewer than [`PROXY_RECORDS`],
    /// and of the quiet ones only a proxy's.
    fn free_record(&self, stop: Stop, new: &StopState) -> Option<usize> {
        let quiet_before = new.since_ms.max(new.until_ms).saturating_sub(BAN_LENGTH.as_millis() as u64);
        let kind = |index: usize| self.record(index)[WHICH].load(Ordering::Relaxed);
        let proxy = which(Stop::Proxy);
        let room =
            stop != Stop::Proxy || (0..STOP_RECORDS).filter(|&index| kind(index) == proxy).count() < PROXY_RECORDS;
        let free = (0..STOP_RECORDS).find(|&index| room && kind(index) == 0);
        free.or_else(|| {
            (0..STOP_RECORDS).find(|&index| {
                let record = self.record(index);
                (stop != Stop::Proxy || kind(index) == proxy)
                    && record[UNTIL].load(Ordering::Relaxed) <= quiet_before
                    && record[PROBE_UNTIL].load(Ordering::Relaxed) == 0
            })
        })
    }

    /// Under the lock: frees records no one can believe (see the module's notes on repair).
    fn free_damaged(&self) {
        for index in 0..STOP_RECORDS {
            let record = self.record(index);
            if record[WHICH].load(Ordering::Relaxed) != 0 && read_record(record).is_none() {
                clear(record);
            }
        }
    }
}

/// Reads a record that may be written meanwhile: `None` when it changed under the read (look
/// again), `Some(None)` when it no longer holds the key's stop or cannot be believed.
fn read_consistent(record: &[AtomicU64], key: KeyDigest, stop: Stop) -> Option<Option<StopState>> {
    let before = record[SEQUENCE].load(Ordering::Acquire);
    if before % 2 == 1 {
        return None;
    }
    let held =
        record[KEY].load(Ordering::Relaxed) == key.value() && record[WHICH].load(Ordering::Relaxed) == which(stop);
    let state = read_record(record);
    fence(Ordering::Acquire);
    if record[SEQUENCE].load(Ordering::Relaxed) != before {
        return None;
    }
    Some(state.filter(|_| held))
}

/// The record's stop as written, or `None` when it is free, half written or damaged.
fn read_record(record: &[AtomicU64]) -> Option<StopState> {
    let word = |at: usize| record[at].load(Ordering::Relaxed);
    if word(WHICH) == 0 || word(WHICH) > Stop::ALL.len() as u64 || word(SEQUENCE) % 2 == 1 {
        return None;
    }
    let lengths = word(LENGTHS);
    let (code_len, description_len) = ((lengths & 0xFFFF) as usize, (lengths >> 16 & 0xFFFF) as usize);
    if code_len > MAX_CODE_BYTES || description_len > MAX_DESCRIPTION_BYTES {
        return None;
    }
    let code = String::from_utf8(read_bytes(&record[CODE..], code_len)).ok()?;
    let description = match lengths >> 32 & 1 {
        1 => Some(String::from_utf8(read_bytes(&record[DESCRIPTION..], description_len)).ok()?),
        _ => None,
    };
    Some(StopState {
        api_code: code,
        description,
        since_ms: word(SINCE),
        until_ms: word(UNTIL),
        renewals: u32::try_from(word(RENEWALS)).unwrap_or(u32::MAX),
        probe_until_ms: word(PROBE_UNTIL),
        probe_pid: u32::try_from(word(PROBE_PID)).unwrap_or(0),
    })
}

/// Under the lock: writes the stop, odd sequence first so that readers look again.
fn write(record: &[AtomicU64], key: KeyDigest, stop: Stop, state: &StopState) {
    let sequence = record[SEQUENCE].load(Ordering::Relaxed) | 1;
    record[SEQUENCE].store(sequence, Ordering::Relaxed);
    fence(Ordering::Release);
    let code = crate::api::text::truncate(&state.api_code, MAX_CODE_BYTES);
    let description = state.description.as_deref().map(|text| crate::api::text::truncate(text, MAX_DESCRIPTION_BYTES));
    let lengths =
        code.len() as u64 | (description.map_or(0, str::len) as u64) << 16 | u64::from(description.is_some()) << 32;
    for (at, value) in [
        (KEY, key.value()),
        (WHICH, which(stop)),
        (SINCE, state.since_ms),
        (UNTIL, state.until_ms),
        (PROBE_UNTIL, state.probe_until_ms),
        (RENEWALS, u64::from(state.renewals)),
        (LENGTHS, lengths),
        (PROBE_PID, u64::from(state.probe_pid)),
    ] {
        record[at].store(value, Ordering::Relaxed);
    }
    write_bytes(&record[CODE..DESCRIPTION], code.as_bytes());
    write_bytes(&record[DESCRIPTION..], description.unwrap_or("").as_bytes());
    record[SEQUENCE].store(sequence.wrapping_add(1), Ordering::Release);
}

/// Under the lock: frees the record.
fn clear(record: &[AtomicU64]) {
    let sequence = record[SEQUENCE].load(Ordering::Relaxed) | 1;
    record[SEQUENCE].store(sequence, Ordering::Relaxed);
    fence(Ordering::Release);
    record[WHICH].store(0, Ordering::Relaxed);
    record[KEY].store(0, Ordering::Relaxed);
    record[SEQUENCE].store(sequence.wrapping_add(1), Ordering::Release);
}

fn read_bytes(words: &[AtomicU64], len: usize) -> Vec<u8> {
    let mut bytes: Vec<u8> =
        words.iter().take(len.div_ceil(8)).flat_map(|word| word.load(Ordering::Relaxed).to_le_bytes()).collect();
    bytes.truncate(len);
    bytes
}

fn write_bytes(words: &[AtomicU64], bytes: &[u8]) {
    for (word, chunk) in words.iter().zip(bytes.chunks(8)) {
        let mut padded = [0u8; 8];
        padded[..chunk.len()].copy_from_slice(chunk);
        word.store(u64::from_le_bytes(padded), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::file::testing::scratch;

    fn stopped(code: &str, now: u64) -> StopState {
        StopState::start(code, Some("described, with ünïcode"), now)
    }

    #[test]
    fn stops_are_kept_read_changed_and_freed() {
        let path = scratch("stops");
        let (file, _) = BudgetFile::open(&path, false).unwrap();
        let (other, _) = BudgetFile::open(&path, false).unwrap();
        let key = KeyDigest::of("key", "stops");
        assert!(!file.any_stop().unwrap());
        assert_eq!(file.stop(key, Stop::Key).unwrap(), None);
        file.update_stop(key, Stop::Key, &mut |_| Some(stopped("ERROR_KEY_DOES_NOT_EXIST", 5))).unwrap();
        assert!(other.any_stop().unwrap(), "another mapping sees it");
        assert_eq!(other.stop(key, Stop::Key).unwrap(), Some(stopped("ERROR_KEY_DOES_NOT_EXIST", 5)));
        assert_eq!(other.stop(key, Stop::Balance).unwrap(), None);
        other
            .update_stop(key, Stop::Key, &mut |kept| {
                let mut state = kept.unwrap();
                state.probe_until_ms = 77;
                state.probe_pid = 4_000_000;
                Some(state)
            })
            .unwrap();
        let leased = file.stop(key, Stop::Key).unwrap().unwrap();
        assert_eq!((leased.probe_until_ms, leased.probe_pid), (77, 4_000_000));
        file.update_stop(key, Stop::Key, &mut |_| None).unwrap();
        assert!(!other.any_stop().unwrap());
        assert_eq!(other.stop(key, Stop::Key).unwrap(), None);
        // Cut short behind the library's back (Windows refuses while it is mapped): the check
        // restores the file before the area at its end is read, rather than a SIGBUS.
        #[cfg(not(windows))]
        {
            std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(100).unwrap();
            assert!(!file.any_stop().unwrap());
            assert_eq!(std::fs::metadata(&path).unwrap().len(), crate::budget::file::FILE_BYTES);
        }
    }

    #[test]
    fn the_area_is_bounded_and_damage_is_not_believed() {
        let path = scratch("stops-full");
        let (file, _) = BudgetFile::open(&path, false).unwrap();
        for n in 0..STOP_RECORDS as u64 {
            let key = KeyDigest::of(&n.to_string(), "full");
            file.update_stop(key, Stop::Balance, &mut |_| Some(stopped("ERROR_ZERO_BALANCE", 0))).unwrap();
        }
        let late = KeyDigest::of("late", "full");
        file.update_stop(late, Stop::Key, &mut |_| Some(stopped("ERROR_IP_BANNED", 0))).unwrap();
        assert_eq!(file.stop(late, Stop::Key).unwrap(), None, "no room: not kept in the file");
        let much_later = 10 * BAN_LENGTH.as_millis() as u64;
        file.update_stop(late, Stop::Key, &mut |_| Some(stopped("ERROR_IP_BANNED", much_later))).unwrap();
        assert!(file.stop(late, Stop::Key).unwrap().is_some(), "a quiet stop's record is taken");

        // A writer killed mid-write leaves the sequence odd; lengths out of bounds are damage.
        let index = file.find(late, Stop::Key).unwrap();
        file.record(index)[SEQUENCE].fetch_or(1, Ordering::Relaxed);
        assert_eq!(file.stop(late, Stop::Key).unwrap(), None);
        let key = KeyDigest::of("5", "full");
        let index = file.find(key, Stop::Balance).unwrap();
        file.record(index)[LENGTHS].store(u64::MAX, Ordering::Relaxed);
        assert_eq!(file.stop(key, Stop::Balance).unwrap(), None);
        file.update_stop(KeyDigest::of("1", "full"), Stop::Balance, &mut |_| None).unwrap();
        assert_eq!(file.stop_words().0.load(Ordering::Relaxed), STOP_RECORDS as u64 - 3, "damaged records were freed");
    }

    #[test]
    fn proxy_stops_take_half_the_records_and_never_a_keys() {
        let path = scratch("stops-proxies");
        let (file, _) = BudgetFile::open(&path, false).unwrap();
        let banned = |n: u64, now| {
            let scope = KeyDigest::of(&n.to_string(), "proxies");
            file.update_stop(scope, Stop::Proxy, &mut |_| Some(stopped("ERROR_PROXY_BANNED", now))).unwrap();
            file.stop(scope, Stop::Proxy).unwrap().is_some()
        };
        assert!((0..PROXY_RECORDS as u64).all(|n| banned(n, 0)));
        assert!(!banned(1000, 0), "beyond their half, a proxy stop is not kept");
        let key = KeyDigest::of("key", "proxies");
        file.update_stop(key, Stop::Key, &mut |_| Some(stopped("ERROR_KEY_DOES_NOT_EXIST", 0))).unwrap();
        assert!(file.stop(key, Stop::Key).unwrap().is_some(), "a key's stop finds room");
        let ended = BAN_LENGTH.as_millis() as u64;
        assert!(banned(1001, ended), "a proxy stop whose ban ended makes room for another");
        // Keys in every other record, all quiet; every proxy banned again: a new proxy stop
        // takes no key's record, a new key stop takes a quiet one.
        for n in 0..(STOP_RECORDS - PROXY_RECORDS - 1) as u64 {
            let key = KeyDigest::of(&n.to_string(), "keys");
            file.update_stop(key, Stop::Balance, &mut |_| Some(stopped("ERROR_ZERO_BALANCE", 0))).unwrap();
        }
        let later = 100 * ended;
        for n in (0..PROXY_RECORDS as u64).chain([1001]) {
            let scope = KeyDigest::of(&n.to_string(), "proxies");
            file.update_stop(scope, Stop::Proxy, &mut |kept| kept.map(|_| stopped("ERROR_PROXY_BANNED", later)))
                .unwrap();
        }
        assert!(!banned(1002, later), "a proxy stop never takes a key's record");
        let late_key = KeyDigest::of("late", "keys");
        file.update_stop(late_key, Stop::Key, &mut |_| Some(stopped("ERROR_IP_BANNED", later))).unwrap();
        assert!(file.stop(late_key, Stop::Key).unwrap().is_some(), "a key stop takes a quiet record");
    }
}
