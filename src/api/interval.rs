//! `spec.interval`: how often an object is re-checked for drift.
//!
//! One grammar, written down once in [`PATTERN`], [`MIN`] and [`MAX`], is both the CRD's admission
//! rule (a CEL rule with a message, see [`Interval`]'s schema) and the decoder ([`Interval::parse`]).
//! `tests/properties.rs` holds the two equal over arbitrary strings, and the end-to-end suite checks
//! the real API server against the decoder.
//!
//! The grammar is a whole number of hours, minutes and seconds, in that order, each at most five
//! digits: `30s`, `10m`, `1h30m`, `24h`. Nothing else that Go's `time.ParseDuration` accepts is
//! allowed (no fractions, no signs, no `ms`/`us`/`ns`, no exponents, no spaces): the range makes
//! them pointless and each one was a way to make the operator panic, loop or misread.
//!
//! The decoder never panics and never clamps: a value outside the grammar or the range is an error
//! that names the value and the rule, and a value inside it decodes to exactly what was written.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The shortest interval: a shorter one would re-read ECR for every object in a hot loop.
pub const MIN: Duration = Duration::from_secs(10);
/// The longest interval: drift is re-checked at least once a day.
pub const MAX: Duration = Duration::from_secs(24 * 3600);
/// The grammar, as an RE2 pattern (what CEL's `matches` and the API server use).
pub const PATTERN: &str = "^([0-9]{1,5}h)?([0-9]{1,5}m)?([0-9]{1,5}s)?$";
/// The longest string admission looks at. The grammar produces at most 18 characters
/// (`99999h99999m99999s`); the slack lets a longer mistake get the rule's message rather than a
/// bare "too long", while bounding the CEL rule's cost.
pub const MAX_LENGTH: u64 = 64;
/// The admission message, shared by the CEL rule and the decoder's error.
pub const RULE_MESSAGE: &str = "interval must be whole hours, minutes and seconds between 10s and 24h, \
     written like 30s, 10m, 1h30m or 24h (no fractions, signs, spaces, days or ms)";

/// A drift re-check interval, as written by the user (for example `10m` or `1h30m`).
///
/// Serialises back to exactly the text it was parsed from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Interval {
    text: String,
    duration: Duration,
}

/// Why a string is not an [`Interval`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IntervalError {
    /// Not of the form `[<n>h][<n>m][<n>s]`.
    #[error("{value:?} is not a valid interval: {RULE_MESSAGE}")]
    Syntax {
        /// The rejected text (bounded: only its first 40 characters are kept).
        value: String,
    },
    /// Well-formed, but shorter than [`MIN`] or longer than [`MAX`].
    #[error("{value:?} is out of range: {RULE_MESSAGE}")]
    OutOfRange {
        /// The rejected text.
        value: String,
    },
}

impl Interval {
    /// Parses the grammar described in the module docs. Never panics.
    pub fn parse(text: &str) -> Result<Self, IntervalError> {
        let syntax = || IntervalError::Syntax {
            value: text.chars().take(40).collect(),
        };
        let mut rest = text;
        let mut seconds: u64 = 0;
        let mut seen_any = false;
        // Units in the only order the grammar allows; each at most once.
        for (unit, factor) in [('h', 3600u64), ('m', 60), ('s', 1)] {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 || rest.as_bytes().get(digits) != Some(&(unit as u8)) {
                continue;
            }
            if digits > 5 {
                return Err(syntax());
            }
            // At most five ASCII digits: always fits in a u64, and 99999 h is far from overflow.
            let n: u64 = rest[..digits].parse().map_err(|_| syntax())?;
            seconds += n * factor;
            rest = &rest[digits + 1..];
            seen_any = true;
        }
        if !rest.is_empty() || !seen_any {
            return Err(syntax());
        }
        let duration = Duration::from_secs(seconds);
        if !(MIN..=MAX).contains(&duration) {
            return Err(IntervalError::OutOfRange {
                value: text.to_owned(),
            });
        }
        Ok(Self {
            text: text.to_owned(),
            duration,
        })
    }

    /// The interval as a duration.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// The text the interval was written as.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The CEL rule the CRDs carry for every `interval` field.
    pub fn cel_rule() -> String {
        format!(
            "self.matches('{PATTERN}') && size(self) > 0 && duration(self) >= duration('{}s') && duration(self) <= duration('{}h')",
            MIN.as_secs(),
            MAX.as_secs() / 3600
        )
    }
}

impl FromStr for Interval {
    type Err = IntervalError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl From<Interval> for Duration {
    fn from(i: Interval) -> Self {
        i.duration
    }
}

impl Serialize for Interval {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Interval {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = Cow::<'de, str>::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Interval {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "Interval".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "maxLength": MAX_LENGTH,
            "x-kubernetes-validations": [{
                "rule": Interval::cel_rule(),
                "message": RULE_MESSAGE,
            }]
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parse_table() {
        let ok = [
            ("10s", 10),
            ("30s", 30),
            ("10m", 600),
            ("1h30m", 5400),
            ("1h0m10s", 3610),
            ("24h", 86400),
            ("1439m60s", 86400),
            ("00010s", 10),
        ];
        for (text, secs) in ok {
            let i = Interval::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(i.duration(), Duration::from_secs(secs), "{text}");
            assert_eq!(i.as_str(), text);
        }
        let syntax = [
            "",
            "s",
            "h",
            "10",
            "1d",
            "-5m",
            "+5m",
            "1.5h",
            "1e3s",
            "10 s",
            " 10s",
            "10s ",
            "500ms",
            "10S",
            "1m1h",
            "1h1h",
            "5m5m",
            "99999999999999999999h",
            "123456s",
            "10µs",
            "١٠s",
        ];
        for text in syntax {
            assert!(
                matches!(Interval::parse(text), Err(IntervalError::Syntax { .. })),
                "{text:?} should be a syntax error"
            );
        }
        for text in ["0s", "9s", "0h0m9s", "24h1s", "25h", "99999h99999m99999s"] {
            assert!(
                matches!(Interval::parse(text), Err(IntervalError::OutOfRange { .. })),
                "{text:?} should be out of range"
            );
        }
    }

    #[test]
    fn decodes_from_json_and_serialises_what_was_written() {
        let i: Interval = serde_json::from_str("\"1h30m\"").unwrap();
        assert_eq!(i.duration(), Duration::from_secs(5400));
        assert_eq!(serde_json::to_string(&i).unwrap(), "\"1h30m\"");
        let e = serde_json::from_str::<Interval>("\"99999999999999999999h\"").unwrap_err();
        assert!(e.to_string().contains("between 10s and 24h"), "{e}");
        assert!(serde_json::from_str::<Interval>("5").is_err());
    }

    #[test]
    fn the_error_message_bounds_what_it_echoes() {
        let long = "9".repeat(10_000);
        let e = Interval::parse(&long).unwrap_err().to_string();
        assert!(e.len() < 300, "{}", e.len());
    }
}
