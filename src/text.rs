//! Text helpers for messages: the error chain, bounded truncation and bounded lists of names. A
//! leaf: imports nothing from the crate.

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

/// Names as a sentence lists them: `a`, `a and b`, `a, b and c`; past `limit` names,
/// `a, b and 3 more`, so a message naming what is missing stays short.
pub fn listed(names: &[String], limit: usize) -> String {
    match names {
        [] => String::new(),
        [one] => one.clone(),
        _ if names.len() > limit => format!("{} and {} more", names[..limit].join(", "), names.len() - limit),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_read_naturally_and_stay_short() {
        let names = |n: usize| (0..n).map(|i| format!("n{i}")).collect::<Vec<_>>();
        for (n, expected) in [
            (0, ""),
            (1, "n0"),
            (2, "n0 and n1"),
            (3, "n0, n1 and n2"),
            (4, "n0, n1, n2 and 1 more"),
            (5, "n0, n1, n2 and 2 more"),
        ] {
            assert_eq!(listed(&names(n), 3), expected, "{n}");
        }
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        let s = "é".repeat(600);
        let t = truncate(s, 1024);
        assert!(t.len() <= 1024 && t.ends_with("..."));
    }
}
