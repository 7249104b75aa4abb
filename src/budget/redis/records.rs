//! A stop as Redis keeps it: one field of a hash, `<scope>:<stop>` (the scope a digest, in hex)
//! to one line of text. The line names the host of a probe's process, since a process id
//! means something only on its own machine.

use crate::budget::guard::policy::{Stop, StopState, MAX_CODE_BYTES, MAX_DESCRIPTION_BYTES};
use crate::budget::key::KeyDigest;

/// The hash field of a stop.
pub fn field(scope: KeyDigest, stop: Stop) -> String {
    format!("{:016x}:{}", scope.value(), stop.index())
}

/// The stop a field names, if it names one.
pub fn stop_of(field: &str) -> Option<Stop> {
    let index: usize = field.rsplit_once(':')?.1.parse().ok()?;
    Stop::ALL.into_iter().find(|stop| stop.index() == index)
}

/// A stop as a line: `since until renewals probe_until probe_pid host code_length has_description|code description`.
pub fn encode(state: &StopState, host: u64) -> String {
    format!(
        "{} {} {} {} {} {:016x} {} {}|{}{}",
        state.since_ms,
        state.until_ms,
        state.renewals,
        state.probe_until_ms,
        state.probe_pid,
        host,
        state.api_code.len(),
        u8::from(state.description.is_some()),
        state.api_code,
        state.description.as_deref().unwrap_or(""),
    )
}

/// A stop read back, and the host of its probe's process. A line no writer makes (damaged, or
/// of a later version) is not believed: `None`, and the next change of the stop replaces it.
pub fn decode(line: &str) -> Option<(StopState, u64)> {
    let (numbers, text) = line.split_once('|')?;
    let mut numbers = numbers.split(' ');
    let mut next = || numbers.next();
    let since_ms = next()?.parse().ok()?;
    let until_ms = next()?.parse().ok()?;
    let renewals = next()?.parse().ok()?;
    let probe_until_ms = next()?.parse().ok()?;
    let probe_pid = next()?.parse().ok()?;
    let host = u64::from_str_radix(next()?, 16).ok()?;
    let code_length: usize = next()?.parse().ok()?;
    let has_description = next()? == "1";
    if next().is_some() || code_length > MAX_CODE_BYTES || !text.is_char_boundary(code_length.min(text.len())) {
        return None;
    }
    let (api_code, description) = text.split_at_checked(code_length)?;
    if description.len() > MAX_DESCRIPTION_BYTES || (!has_description && !description.is_empty()) {
        return None;
    }
    let state = StopState {
        api_code: api_code.to_owned(),
        description: has_description.then(|| description.to_owned()),
        since_ms,
        until_ms,
        renewals,
        probe_until_ms,
        probe_pid,
    };
    Some((state, host))
}

/// This machine, as a probe's lease names it: the first 8 bytes of SHA-256 of its name and
/// machine id (neither is kept in Redis as such). Processes of one machine agree on it.
pub fn this_host() -> u64 {
    let mut input = Vec::new();
    for source in ["/etc/machine-id", "/proc/sys/kernel/hostname"] {
        if let Ok(text) = std::fs::read(source) {
            input.extend_from_slice(&text);
        }
        input.push(0);
    }
    for variable in ["COMPUTERNAME", "USERDOMAIN"] {
        if let Some(value) = std::env::var_os(variable) {
            input.extend_from_slice(value.to_string_lossy().as_bytes());
        }
        input.push(0);
    }
    let sha = ring::digest::digest(&ring::digest::SHA256, &input);
    let mut first = [0u8; 8];
    first.copy_from_slice(&sha.as_ref()[..8]);
    u64::from_le_bytes(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_survives_its_line_and_damage_is_not_believed() {
        let mut state = StopState::start("ERROR_ZERO_BALANCE", Some("Account has zero balance | 0"), 1_764_891_612_000);
        (state.probe_until_ms, state.probe_pid, state.renewals) = (9, 4242, 3);
        let line = encode(&state, 0xfeed);
        assert_eq!(decode(&line), Some((state.clone(), 0xfeed)));
        state.description = None;
        assert_eq!(decode(&encode(&state, 1)), Some((state, 1)));
        for damaged in ["", "1 2 3|x", "1 2 3 4 5 6 99 0|short", "a b c d e f 1 0|E", "1 2 3 4 5 6 1 0|Etail"] {
            assert_eq!(decode(damaged), None, "{damaged:?}");
        }
        let scope = KeyDigest::of("k", "u");
        assert_eq!(stop_of(&field(scope, Stop::Proxy)), Some(Stop::Proxy));
        assert!(!field(scope, Stop::Key).contains('k'));
    }
}
