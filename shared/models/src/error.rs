//! The one parse error of the models: a value that failed to parse at the edge; and the
//! shortening of user input quoted in its messages.

/// A value that failed to parse at the edge; the message names what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

/// At most `max` characters of user or provider text, for quoting it in an error message.
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max).collect();
        out.push('…');
        out
    }
}

/// User input quoted in an error message: at most 40 characters.
pub(crate) fn truncate(s: &str) -> String {
    clip(s, 40)
}
