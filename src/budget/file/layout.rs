//! The file's layout: a 64-byte header, then `BUCKETS` buckets of `WAYS` slots of 32 bytes,
//! then the account guard's stops (`stops.rs`; `FILE_BYTES` in all, about 4 MiB). A task's slot lives in the bucket its (key digest, task
//! id) hashes to; a new task takes an empty slot, else one idle for `IDLE_EXPIRY`, else the
//! bucket's least recently used (`insert.rs`). So a task is forgotten only when 32 others of its
//! bucket were used after it: with the table far from full, practically never.
//!
//! The words are in the machine's byte order: the file never leaves the machine.

use crate::budget::file::stops::{AREA_BYTES, RECORD_WORDS, STOP_RECORDS};
use crate::budget::key::KeyDigest;

/// Buckets of the table.
pub const BUCKETS: usize = 4096;
/// Slots per bucket.
pub const WAYS: usize = 32;
pub(super) const SLOT_BYTES: usize = 32;
pub(super) const BUCKET_BYTES: usize = WAYS * SLOT_BYTES;
pub(super) const HEADER_BYTES: usize = 64;
/// The file's size: header, table and stops.
pub const FILE_BYTES: u64 = (HEADER_BYTES + BUCKETS * BUCKET_BYTES + AREA_BYTES) as u64;
/// Tasks the table can hold.
pub const CAPACITY: usize = BUCKETS * WAYS;

const MAGIC: &[u8; 8] = b"CMBUDGT\x04";
/// The header: magic, then the geometry, so that a file of another layout is never misread.
pub(super) fn header() -> [u8; HEADER_BYTES] {
    let mut header = [0u8; HEADER_BYTES];
    header[..8].copy_from_slice(MAGIC);
    header[8..12].copy_from_slice(&(BUCKETS as u32).to_le_bytes());
    header[12..16].copy_from_slice(&(WAYS as u32).to_le_bytes());
    header[16..20].copy_from_slice(&(SLOT_BYTES as u32).to_le_bytes());
    header[20..24].copy_from_slice(&(STOP_RECORDS as u32).to_le_bytes());
    header[24..28].copy_from_slice(&(RECORD_WORDS as u32).to_le_bytes());
    header
}

/// The bucket of a task: a mix of both halves of the key, so consecutive task ids spread. Part
/// of the file's layout (every process must agree on it); public so that tests can crowd one
/// bucket.
pub fn bucket_of(digest: KeyDigest, task_id: i64) -> usize {
    let mut x = digest.value() ^ (task_id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 29;
    (x % BUCKETS as u64) as usize
}
