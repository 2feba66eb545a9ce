//! Text helpers for messages: the error chain and bounded truncation. A leaf: imports nothing
//! from the crate.

/// The error and its sources joined with ": ", truncated to 1024 bytes on a char boundary.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    truncate(out, 1024)
}

/// Truncates to at most `max` bytes on a char boundary, marking the cut with "...".
pub fn truncate(mut s: String, max: usize) -> String {
    if s.len() <= max {
        return s;
    }
    let mut cut = max.saturating_sub(3);
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s.truncate(cut);
    s.push_str("...");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_respects_char_boundaries() {
        let s = "é".repeat(600);
        let t = truncate(s, 1024);
        assert!(t.len() <= 1024 && t.ends_with("..."));
    }
}
