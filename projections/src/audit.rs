//! One recorded event as auditors see it: the audit API's event shape, the `audit` topic's
//! pushes, a case's history and the NDJSON export. Password hashes never appear in it.

use events::domain::case::CaseEvent;
use events::domain::revocation::RevocationEvent;
use events::domain::user::UserEvent;
use events::domain::DomainEvent;
use events::hash::to_hex;
use events::{EventEnvelope, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::json::to_value;
use crate::users::REDACTED;

/// `{"position", "stream", "version", "id", "type", "recorded_at", "user_id", "data", "hash",
/// "prev_hash"}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub position: u64,
    pub stream: String,
    pub version: u64,
    pub id: Uuid,
    #[serde(rename = "type")]
    pub event_type: String,
    pub recorded_at: Timestamp,
    /// The acting user; `null` for the server itself.
    pub user_id: Option<Uuid>,
    /// The event's own fields.
    pub data: Value,
    /// Lowercase hex SHA-256.
    pub hash: String,
    pub prev_hash: String,
}

impl AuditEvent {
    pub fn from_envelope(env: &EventEnvelope) -> Self {
        let r = &env.record;
        AuditEvent {
            position: r.position,
            stream: r.stream.clone(),
            version: r.version,
            id: r.data.id,
            event_type: r.data.event_type.clone(),
            recorded_at: r.data.recorded_at,
            user_id: r.data.metadata.user_id,
            data: event_data(&env.event),
            hash: to_hex(&r.hash),
            prev_hash: to_hex(&r.prev_hash),
        }
    }

    /// One line of the NDJSON export (without the newline).
    pub fn to_json(&self) -> String {
        crate::json::to_string(self)
    }
}

/// The payload of an event as JSON: its own struct's fields, with any password hash replaced by
/// `"[redacted]"`.
pub fn event_data(event: &DomainEvent) -> Value {
    use CaseEvent as C;
    use RevocationEvent as R;
    use UserEvent as U;
    let mut data = match event {
        DomainEvent::Case(e) => match e {
            C::Submitted(p) => to_value(p),
            C::Claimed(p) => to_value(p),
            C::Released(p) => to_value(p),
            C::Decided(p) => to_value(p),
            C::Escalated(p) => to_value(p),
            C::Reopened(p) => to_value(p),
        },
        DomainEvent::User(e) => match e {
            U::Registered(p) => to_value(p),
            U::RolesChanged(p) => to_value(p),
            U::Disabled(p) => to_value(p),
            U::Enabled(p) => to_value(p),
            U::PasswordChanged(p) => to_value(p),
        },
        DomainEvent::Revocation(e) => match e {
            R::TokenRevoked(p) => to_value(p),
            R::FamilyRevoked(p) => to_value(p),
            R::Refreshed(p) => to_value(p),
        },
        DomainEvent::System(e) => match e {
            events::domain::system::SystemEvent::DemoStoreMarked(p) => to_value(p),
        },
    };
    if let Value::Object(fields) = &mut data {
        if let Some(hash) = fields.get_mut("password_hash") {
            *hash = Value::String(REDACTED.to_owned());
        }
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{case_env, env, submitted, CLASSIFIER};
    use events::domain::case::{CaseDecided, CaseEvent};
    use events::domain::user::{stream_name, user_id_for, UserPasswordChanged, UserRegistered};
    use events::domain::{Decision, Priority, Role};
    use serde_json::json;

    #[test]
    fn the_shape_is_the_protocols() {
        let id = Uuid::from_u128(1);
        let e = case_env(
            id,
            2,
            7,
            CaseEvent::Decided(CaseDecided {
                reviewer_id: Uuid::from_u128(2),
                decision: Decision::Reject,
                final_culpability: None,
                notes: Some("no".into()),
            }),
        );
        let audit = AuditEvent::from_envelope(&e);
        let value = serde_json::to_value(&audit).unwrap();
        assert_eq!(
            value,
            json!({
                "position": 7, "stream": format!("case-{id}"), "version": 2,
                "id": e.record.data.id, "type": "case_decided",
                "recorded_at": "1970-01-01T00:00:07.000000Z", "user_id": CLASSIFIER,
                "data": {"reviewer_id": Uuid::from_u128(2), "decision": "reject",
                         "final_culpability": null, "notes": "no"},
                "hash": "07".repeat(32), "prev_hash": "00".repeat(32),
            })
        );
        let keys: Vec<&String> = value.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 10);
        let back: AuditEvent = serde_json::from_str(&audit.to_json()).unwrap();
        assert_eq!(back, audit);

        let s = AuditEvent::from_envelope(&case_env(id, 1, 1, submitted(id, Priority::High)));
        assert_eq!(s.data["assessment"]["culpability"], "knowingly");
        assert_eq!(s.data["priority"], "high");
    }

    #[test]
    fn password_hashes_are_redacted() {
        let uid = user_id_for("ada");
        let registered = UserEvent::Registered(UserRegistered {
            user_id: uid,
            username: "ada".into(),
            display_name: "Ada".into(),
            password_hash: "$argon2id$secret".into(),
            roles: vec![Role::Admin],
        });
        let changed = UserEvent::PasswordChanged(UserPasswordChanged {
            password_hash: "$argon2id$other".into(),
        });
        for (n, e) in [registered, changed].into_iter().enumerate() {
            let n = n as u64 + 1;
            let audit = AuditEvent::from_envelope(&env(&stream_name(uid), n, n, e.into()));
            let json = audit.to_json();
            assert!(!json.contains("argon2id"), "{json}");
            assert_eq!(audit.data["password_hash"], REDACTED);
        }
    }
}
