//! What a task's count is kept under: a digest of the endpoint and the client key, never the
//! key itself.

/// What a task's count is kept under: the first 8 bytes of SHA-256 over the endpoint and the
/// client key. The same in every process, version and language binding of the library, and the
/// key cannot be read back from it. The endpoint is part of it because a task id means a task
/// of one service: an emulator restarting its ids does not spend the real service's budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KeyDigest(u64);

impl KeyDigest {
    pub fn of(client_key: &str, base_url: &str) -> Self {
        let mut input = Vec::with_capacity(base_url.len() + 1 + client_key.len());
        input.extend_from_slice(base_url.as_bytes());
        input.push(0);
        input.extend_from_slice(client_key.as_bytes());
        let sha = ring::digest::digest(&ring::digest::SHA256, &input);
        let mut first = [0u8; 8];
        first.copy_from_slice(&sha.as_ref()[..8]);
        // 0 marks an empty slot in the shared file.
        KeyDigest(u64::from_le_bytes(first).max(1))
    }

    pub fn value(self) -> u64 {
        self.0
    }

    /// What log lines name the key by: the digest's first 32 bits in hex (the key itself is
    /// never logged; this tells keys apart without revealing them).
    pub fn short(self) -> String {
        format!("{:08x}", self.0 >> 32)
    }

    pub(crate) fn from_value(value: u64) -> Self {
        KeyDigest(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_is_stable_and_separates_endpoints() {
        // The same in every process and version: a change would split the shared counts. (The
        // first 8 bytes, little-endian, of SHA-256 of "https://api.capmonster.cloud\0key".)
        assert_eq!(KeyDigest::of("key", "https://api.capmonster.cloud").value(), 0x999c_1e42_5997_f58c);
        assert_ne!(KeyDigest::of("key", "http://127.0.0.1:1"), KeyDigest::of("key", "http://127.0.0.1:2"));
        assert_ne!(KeyDigest::of("ab", "c"), KeyDigest::of("a", "bc"));
    }
}
