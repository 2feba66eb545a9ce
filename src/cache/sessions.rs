//! Tenant sessions: the STS credentials each ServiceAccount got for its IAM role
//! (`AssumeRoleWithWebIdentity`), kept until shortly before they expire, so a PullSecret with
//! `spec.identity` requests a ServiceAccount token and calls STS about once an hour, not on
//! every reconcile.
//!
//! Keyed by (role, subject): a namespace never uses a session another namespace got, even for
//! the same role, so each one proves to STS (against the role's trust policy) that its own
//! ServiceAccount may assume the role. What they share is the ECR token, cached per (region,
//! endpoint, role) by the token cache ([`crate::backend::Target::key`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::backend::Session;

/// A session is not used within this margin of its expiry (a token fetched with it must work).
pub const SESSION_MARGIN: Duration = Duration::from_secs(300);

/// The sessions, by (role ARN, `namespace/serviceaccount`).
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<(String, String), Session>>,
}

impl Sessions {
    /// The session `subject` got for `role`, unless it expires within [`SESSION_MARGIN`] of
    /// `now`.
    pub fn get(&self, role: &str, subject: &str, now: SystemTime) -> Option<Session> {
        let map = self.map.lock().ok()?;
        map.get(&(role.to_owned(), subject.to_owned()))
            .filter(|s| s.expires_at > now + SESSION_MARGIN)
            .cloned()
    }

    /// The latest session `subject` got, for whichever role, unless it expires within
    /// [`SESSION_MARGIN`] of `now`: for a Registry whose role comes from its ServiceAccount's
    /// annotation, read only by the Registry's own reconcile.
    pub fn latest(&self, subject: &str, now: SystemTime) -> Option<(String, Session)> {
        let map = self.map.lock().ok()?;
        map.iter()
            .filter(|((_, s), session)| s == subject && session.expires_at > now + SESSION_MARGIN)
            .max_by_key(|(_, session)| session.expires_at)
            .map(|((role, _), session)| (role.clone(), session.clone()))
    }

    /// Records a new session (and forgets every expired one).
    pub fn put(&self, role: &str, subject: &str, session: Session, now: SystemTime) {
        if let Ok(mut map) = self.map.lock() {
            map.retain(|_, s| s.expires_at > now);
            map.insert((role.to_owned(), subject.to_owned()), session);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::StaticKeys;
    use secrecy::SecretString;

    fn session(expires_in: u64, now: SystemTime) -> Session {
        Session {
            keys: StaticKeys {
                access_key_id: "ASIA".into(),
                secret_access_key: SecretString::from("s"),
                session_token: None,
            },
            expires_at: now + Duration::from_secs(expires_in),
            assumed_role_arn: None,
        }
    }

    /// A session serves only its own (role, subject), and not within the margin of its expiry.
    #[test]
    fn sessions_serve_their_own_subject_until_near_expiry() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let sessions = Sessions::default();
        sessions.put("role/a", "team-a/puller", session(3600, now), now);
        assert!(sessions.get("role/a", "team-a/puller", now).is_some());
        assert!(
            sessions.get("role/a", "team-b/puller", now).is_none(),
            "another namespace proves itself"
        );
        assert!(sessions.get("role/b", "team-a/puller", now).is_none());
        let later = now + Duration::from_secs(3600) - SESSION_MARGIN;
        assert!(sessions.get("role/a", "team-a/puller", later).is_none());
        assert_eq!(
            sessions
                .latest("team-a/puller", now)
                .map(|(role, _)| role)
                .as_deref(),
            Some("role/a")
        );
        assert!(sessions.latest("team-a/puller", later).is_none());
        assert!(sessions.latest("team-b/puller", now).is_none());
        // Expired sessions are dropped on the next put.
        sessions.put(
            "role/b",
            "x/y",
            session(7200, later),
            now + Duration::from_secs(4000),
        );
        assert_eq!(sessions.map.lock().unwrap().len(), 1);
    }
}
