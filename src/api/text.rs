//! Text from outside (the service's answers, paths, settings) as it may appear in a message.

/// Cuts text from outside to at most `max` bytes (on a char boundary) for a message.
pub(crate) fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
