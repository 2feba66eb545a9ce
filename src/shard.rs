//! `--watch-label-selector`: which of the operator's own objects this instance serves.
//!
//! Sharding in the manner of Flux: every instance watches, caches and lists only the Registries,
//! Repositories, LifecyclePolicies, ReplicationRules, PullSecrets and ClusterPullSecrets whose
//! labels match its selector, so several instances can split one cluster's objects between them
//! by the label [`SHARD_LABEL`] (the main instance `!sharding.ecr-operator.dev/key`, each shard
//! `sharding.ecr-operator.dev/key=<shard>`). Secrets, Namespaces and ServiceAccounts are never
//! sharded. See `docs/sharding.md` for what a shard can and cannot see.
//!
//! The selector is written in the Kubernetes label-selector syntax (`kubectl get -l`): requirements
//! separated by commas, each `key`, `!key`, `key=value`, `key==value`, `key!=value`,
//! `key in (v1,v2)` or `key notin (v1,v2)`. It is parsed and checked at start-up ([`FromStr`]), so
//! a mistake stops the process with a message instead of a watch the API server refuses.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use kube::api::ListParams;
use kube::core::{Expression, Selector, SelectorExt};
use kube::runtime::watcher;

/// The label that assigns an object to a shard (its value names the shard).
pub const SHARD_LABEL: &str = "sharding.ecr-operator.dev/key";

/// A parsed `--watch-label-selector`. The empty selector selects every object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchSelector {
    expressions: Vec<Expression>,
}

impl WatchSelector {
    /// Whether this selector selects every object (no `--watch-label-selector`).
    pub fn selects_all(&self) -> bool {
        self.expressions.is_empty()
    }

    /// Whether an object with these labels is this instance's business.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.selector().matches(labels)
    }

    /// The watch configuration of every watch of the operator's own kinds: the selector, and any
    /// resource version (served from the API server's watch cache).
    pub fn watcher_config(&self) -> watcher::Config {
        let config = watcher::Config::default().any_semantic();
        if self.selects_all() {
            config
        } else {
            config.labels_from(&self.selector())
        }
    }

    /// The parameters of every LIST of the operator's own kinds (consistent reads).
    pub fn list_params(&self) -> ListParams {
        if self.selects_all() {
            ListParams::default()
        } else {
            ListParams::default().labels_from(&self.selector())
        }
    }

    fn selector(&self) -> Selector {
        self.expressions.iter().cloned().collect()
    }
}

/// The canonical text of the selector (what the API server receives), `""` when it selects all.
impl fmt::Display for WatchSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.selector())
    }
}

impl FromStr for WatchSelector {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let tokens = tokenize(text)?;
        let mut expressions = Vec::new();
        let mut rest = tokens.as_slice();
        while !rest.is_empty() {
            let (expression, after) = requirement(rest)?;
            expressions.push(expression);
            rest = match after {
                [] => after,
                [Token::Comma, more @ ..] if !more.is_empty() => more,
                [Token::Comma] => return Err("a label selector must not end with a comma".into()),
                [other, ..] => return Err(format!("expected a comma between requirements, found {other}")),
            };
        }
        Ok(Self { expressions })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Word(String),
    Not,
    Equals,
    DoubleEquals,
    NotEquals,
    Open,
    Close,
    Comma,
    Compare(char),
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Word(w) => write!(f, "{w:?}"),
            Self::Not => f.write_str("'!'"),
            Self::Equals => f.write_str("'='"),
            Self::DoubleEquals => f.write_str("'=='"),
            Self::NotEquals => f.write_str("'!='"),
            Self::Open => f.write_str("'('"),
            Self::Close => f.write_str("')'"),
            Self::Comma => f.write_str("','"),
            Self::Compare(c) => write!(f, "'{c}'"),
        }
    }
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '!' | '=' => {
                chars.next();
                let double = chars.next_if_eq(&'=').is_some();
                tokens.push(match (c, double) {
                    ('!', true) => Token::NotEquals,
                    ('!', false) => Token::Not,
                    (_, true) => Token::DoubleEquals,
                    (_, false) => Token::Equals,
                });
            }
            '(' | ')' | ',' | '<' | '>' => {
                chars.next();
                tokens.push(match c {
                    '(' => Token::Open,
                    ')' => Token::Close,
                    ',' => Token::Comma,
                    other => Token::Compare(other),
                });
            }
            _ => {
                let mut word = String::new();
                while let Some(c) = chars.next_if(|c| !c.is_whitespace() && !"!=(),<>".contains(*c)) {
                    word.push(c);
                }
                tokens.push(Token::Word(word));
            }
        }
    }
    Ok(tokens)
}

/// One requirement at the start of `tokens`, and what follows it.
fn requirement(tokens: &[Token]) -> Result<(Expression, &[Token]), String> {
    match tokens {
        [Token::Not, Token::Word(key), rest @ ..] => Ok((Expression::DoesNotExist(label_key(key)?), rest)),
        [Token::Not, ..] => Err("'!' must be followed by a label key".into()),
        [Token::Word(key), rest @ ..] => {
            let key = label_key(key)?;
            match rest {
                [Token::Equals | Token::DoubleEquals, Token::Word(v), rest @ ..] => {
                    Ok((Expression::Equal(key, label_value(v)?), rest))
                }
                [Token::Equals | Token::DoubleEquals, rest @ ..] => {
                    Ok((Expression::Equal(key, String::new()), rest))
                }
                [Token::NotEquals, Token::Word(v), rest @ ..] => {
                    Ok((Expression::NotEqual(key, label_value(v)?), rest))
                }
                [Token::NotEquals, rest @ ..] => Ok((Expression::NotEqual(key, String::new()), rest)),
                [Token::Word(op), rest @ ..] if op == "in" || op == "notin" => {
                    let (values, rest) = value_set(&key, op, rest)?;
                    let expression = if op == "in" {
                        Expression::In(key, values)
                    } else {
                        Expression::NotIn(key, values)
                    };
                    Ok((expression, rest))
                }
                [Token::Compare(c), ..] => Err(format!(
                    "the operator '{c}' of {key:?} is not supported: use =, ==, !=, in, notin, or the key alone (exists) or with '!' (does not exist)"
                )),
                [Token::Word(op), ..] => Err(format!(
                    "unknown operator {op:?} after {key:?}: use =, ==, !=, in or notin"
                )),
                rest => Ok((Expression::Exists(key), rest)),
            }
        }
        [other, ..] => Err(format!("expected a label key, found {other}")),
        [] => Err("expected a label key".into()),
    }
}

/// `(v1, v2, ...)` after `key in` / `key notin`.
fn value_set<'t>(
    key: &str,
    op: &str,
    tokens: &'t [Token],
) -> Result<(BTreeSet<String>, &'t [Token]), String> {
    let Some((Token::Open, mut rest)) = tokens.split_first() else {
        return Err(format!(
            "{key:?} {op} must be followed by a list of values in parentheses"
        ));
    };
    let mut values = BTreeSet::new();
    loop {
        match rest {
            [Token::Word(v), Token::Comma, more @ ..] => {
                values.insert(label_value(v)?);
                rest = more;
            }
            [Token::Word(v), Token::Close, more @ ..] => {
                values.insert(label_value(v)?);
                return Ok((values, more));
            }
            [Token::Close, ..] if values.is_empty() => {
                return Err(format!("{key:?} {op} (...) must list at least one value"));
            }
            _ => {
                return Err(format!(
                    "{key:?} {op} (...): expected values separated by commas and a closing ')'"
                ));
            }
        }
    }
}

/// A label key: an optional DNS subdomain prefix and '/', then a name of at most 63 characters.
fn label_key(key: &str) -> Result<String, String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        let dns_label = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if prefix.len() > 253 || !prefix.split('.').all(dns_label) {
            return Err(format!(
                "invalid label key {key:?}: the prefix before '/' must be a DNS subdomain (lower-case letters, digits, '-' and '.', at most 253 characters)"
            ));
        }
    }
    if name.is_empty() || !is_name(name) {
        return Err(format!(
            "invalid label key {key:?}: the name must be 1 to 63 characters of letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
        ));
    }
    Ok(key.to_owned())
}

/// A label value: empty, or a name as in a key.
fn label_value(value: &str) -> Result<String, String> {
    if value.is_empty() || is_name(value) {
        Ok(value.to_owned())
    } else {
        Err(format!(
            "invalid label value {value:?}: at most 63 characters of letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
        ))
    }
}

fn is_name(s: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_alphanumeric();
    s.len() <= 63
        && s.bytes().all(|b| alnum(b) || b == b'-' || b == b'_' || b == b'.')
        && s.bytes().next().is_some_and(alnum)
        && s.bytes().last().is_some_and(alnum)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn parses_the_kubernetes_syntax_into_its_canonical_text() {
        for (text, canonical) in [
            ("", ""),
            ("  ", ""),
            ("!sharding.ecr-operator.dev/key", "!sharding.ecr-operator.dev/key"),
            (
                "sharding.ecr-operator.dev/key=a",
                "sharding.ecr-operator.dev/key=a",
            ),
            (
                "sharding.ecr-operator.dev/key == a",
                "sharding.ecr-operator.dev/key=a",
            ),
            ("team!=ops", "team!=ops"),
            ("team", "team"),
            ("team=", "team="),
            (
                "env in (prod, staging),tier notin (db)",
                "env in (prod,staging),tier notin (db)",
            ),
            ("a=1, b", "a=1,b"),
        ] {
            let parsed: WatchSelector = text.parse().unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(parsed.to_string(), canonical, "{text:?}");
            assert_eq!(parsed.selects_all(), canonical.is_empty(), "{text:?}");
            // The canonical text parses back to the same selector.
            assert_eq!(canonical.parse::<WatchSelector>().unwrap(), parsed, "{text:?}");
        }
    }

    #[test]
    fn refuses_what_the_api_server_would_refuse_with_a_reason() {
        for (text, expected) in [
            ("a=1,", "must not end with a comma"),
            (",a", "expected a label key, found ','"),
            ("a b", "unknown operator \"b\""),
            ("a=1 b=2", "expected a comma"),
            ("!", "'!' must be followed by a label key"),
            ("!a=b", "expected a comma between requirements, found '='"),
            ("a in ()", "must list at least one value"),
            ("a in b", "must be followed by a list of values in parentheses"),
            ("a in (b", "closing ')'"),
            ("a in (b,)", "closing ')'"),
            ("a>1", "the operator '>' of \"a\" is not supported"),
            (
                "Bad_Prefix/key=a",
                "the prefix before '/' must be a DNS subdomain",
            ),
            ("/key", "the prefix before '/' must be a DNS subdomain"),
            ("prefix.dev/", "invalid label key \"prefix.dev/\""),
            ("-a=b", "invalid label key \"-a\""),
            ("a=-b", "invalid label value \"-b\""),
            (&format!("a={}", "x".repeat(64)), "invalid label value"),
            (&format!("{}=a", "k".repeat(64)), "invalid label key"),
        ] {
            let err = text.parse::<WatchSelector>().expect_err(text);
            assert!(err.contains(expected), "{text:?}: {err}");
        }
    }

    #[test]
    fn matches_as_the_api_server_selects() {
        let main: WatchSelector = format!("!{SHARD_LABEL}").parse().unwrap();
        let shard_a: WatchSelector = format!("{SHARD_LABEL}=a").parse().unwrap();
        let unlabelled = labels(&[("app", "x")]);
        let in_a = labels(&[(SHARD_LABEL, "a")]);
        let in_b = labels(&[(SHARD_LABEL, "b")]);
        // Each object belongs to exactly one of the main instance and the shards.
        assert!(main.matches(&unlabelled) && !shard_a.matches(&unlabelled));
        assert!(!main.matches(&in_a) && shard_a.matches(&in_a));
        assert!(!main.matches(&in_b) && !shard_a.matches(&in_b));
        assert!(WatchSelector::default().matches(&in_b));
        let set: WatchSelector = "env in (prod,staging),tier notin (db)".parse().unwrap();
        assert!(set.matches(&labels(&[("env", "prod")])));
        assert!(!set.matches(&labels(&[("env", "prod"), ("tier", "db")])));
        assert!(!set.matches(&labels(&[("env", "dev")])));
    }

    #[test]
    fn watches_and_lists_carry_the_selector_only_when_there_is_one() {
        let all = WatchSelector::default();
        assert_eq!(all.watcher_config().label_selector, None);
        assert_eq!(all.list_params().label_selector, None);
        let shard: WatchSelector = format!("{SHARD_LABEL}=a").parse().unwrap();
        let text = format!("{SHARD_LABEL}=a");
        assert_eq!(
            shard.watcher_config().label_selector.as_deref(),
            Some(text.as_str())
        );
        assert_eq!(shard.list_params().label_selector.as_deref(), Some(text.as_str()));
    }
}
