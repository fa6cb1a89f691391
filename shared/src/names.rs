//! What a name or other short text from outside may hold (an endpoint's name, a
//! disable reason, an event's source): something, at most so many characters — counted
//! as characters, not bytes, so that a limit means the same in every script — and no
//! control character (NUL, a line break, an escape), which would forge lines in logs
//! and terminals and break the headers some of them end up in.

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    #[error("must be 1 to {max} characters long")]
    Length { max: usize },
    #[error("must not contain control characters (such as NUL, a tab or a line break)")]
    Control,
}

/// Checks one name: not blank, at most `max` characters, no control character.
pub fn check_name(s: &str, max: usize) -> Result<(), NameError> {
    if s.trim().is_empty() || s.chars().count() > max {
        return Err(NameError::Length { max });
    }
    if s.chars().any(char::is_control) {
        return Err(NameError::Control);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_count_characters_not_bytes() {
        // 128 characters of three bytes each: 384 bytes, within a 128-character limit.
        assert_eq!(check_name(&"語".repeat(128), 128), Ok(()));
        assert_eq!(
            check_name(&"語".repeat(129), 128),
            Err(NameError::Length { max: 128 })
        );
        assert_eq!(check_name("   ", 128), Err(NameError::Length { max: 128 }));
    }

    #[test]
    fn nul_and_control_characters_are_refused() {
        for s in [
            "a\u{0}b",
            "line\nbreak",
            "tab\there",
            "esc\u{1b}[31m",
            "del\u{7f}",
            "c1\u{85}",
        ] {
            assert_eq!(check_name(s, 128), Err(NameError::Control), "{s:?}");
        }
        assert_eq!(check_name("crm — production ✓", 128), Ok(()));
    }
}
