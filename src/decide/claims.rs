//! One object per thing in ECR that cannot carry the operator's owner tag.
//!
//! A Repository carries the operator's owner tag, so a second object naming it sees the first
//! (`OwnedElsewhere`). Pull-through cache rules and repository creation templates take no tags,
//! and two objects naming the same prefix of the same registry would otherwise share one rule:
//! each would rewrite it to its own spec, and deleting either would remove it under the other.
//! The same goes for the Secrets Manager secret a PullThroughCacheRule keeps from its
//! `credentialsSecretRef` (its name comes from the spec, so two objects can name one).
//!
//! So among the objects of a kind that name the same thing (the same registry, see
//! [`super::owners::Place`], and the same prefix or secret name), the oldest
//! (`creationTimestamp`, then name) holds it. Every other one writes nothing, deletes nothing,
//! and is Stalled with `Conflict` naming the holder. When the holder goes, the next oldest takes
//! over: its controller re-queues the objects that named the same thing.
//!
//! Pure (see [`crate::decide`]): the controllers pass the objects as listed and which ones name
//! the same thing.

use k8s_openapi::jiff::Timestamp;
use kube::{Resource, ResourceExt};

/// Pure: the order in which objects hold what several name: older first (`creationTimestamp`;
/// the API server sets it on every object), then by name. Deterministic, so two objects never
/// flap.
pub fn seniority<K: Resource>(k: &K) -> (Option<Timestamp>, String) {
    (k.meta().creation_timestamp.as_ref().map(|t| t.0), k.name_any())
}

/// Pure: the object that holds what `mine` names, when it is not `mine`: the most senior
/// ([`seniority`]) of the objects in `all` for which `same` is true, when it is senior to
/// `mine`. `None` when `mine` holds it. An object being deleted still holds what it names until
/// it is gone (its cleanup may still remove it from ECR).
pub fn holder<'a, K: Resource>(mine: &K, all: &'a [K], same: impl Fn(&K) -> bool) -> Option<&'a K> {
    let me = seniority(mine);
    all.iter()
        .filter(|other| same(other))
        .map(|other| (seniority(other), other))
        .filter(|(age, _)| *age < me)
        .min_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, other)| other)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ConfigMap;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    use super::*;

    fn object(name: &str, created: i64, key: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.into()),
                creation_timestamp: Some(Time(Timestamp::from_second(created).unwrap())),
                labels: Some([("key".to_owned(), key.to_owned())].into()),
                ..ObjectMeta::default()
            },
            ..ConfigMap::default()
        }
    }

    fn key(c: &ConfigMap) -> String {
        c.labels()["key"].clone()
    }

    #[test]
    fn the_most_senior_of_those_naming_the_same_thing_holds_it() {
        let all = vec![
            object("b", 100, "p"),
            object("a", 100, "p"),
            object("c", 50, "q"),
            object("d", 200, "p"),
            object("e", 300, "p"),
        ];
        // (object, its holder when not itself)
        let cases = [
            ("a", None),      // oldest of "p"; "b" has the same second, "a" sorts first
            ("b", Some("a")), // same second: the name decides
            ("c", None),      // alone with "q", though older than all
            ("d", Some("a")),
            ("e", Some("a")), // the most senior, not the next older one ("d")
        ];
        for (name, want) in cases {
            let mine = all.iter().find(|o| o.name_any() == name).unwrap();
            let got = holder(mine, &all, |o| key(o) == key(mine)).map(ResourceExt::name_any);
            assert_eq!(got.as_deref(), want, "{name}");
        }
    }

    #[test]
    fn an_object_not_yet_listed_is_compared_with_the_listed_ones() {
        let all = vec![object("old", 10, "p")];
        let new = object("new", 20, "p");
        assert_eq!(
            holder(&new, &all, |o| key(o) == "p").map(ResourceExt::name_any),
            Some("old".into())
        );
        let older = object("older", 5, "p");
        assert!(holder(&older, &all, |o| key(o) == "p").is_none());
        // The same object, listed, is never its own holder.
        assert!(holder(&all[0], &all, |_| true).is_none());
    }
}
