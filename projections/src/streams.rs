//! Which aggregate an event belongs to, read from its stream name (`case-<uuid>`,
//! `user-<uuid>`, `revocations`).
//!
//! Only the first event of a case or a user carries the aggregate's id in its payload; every
//! later one is known by its stream alone, so the read side keys everything by the stream.

use events::domain::{case, user, DomainEvent};
use events::EventEnvelope;
use uuid::Uuid;

/// The id in a stream name such as `case-<uuid>`, if the stream has that prefix.
fn id_in(stream: &str, prefix: &str) -> Option<Uuid> {
    stream
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('-'))
        .and_then(|id| Uuid::parse_str(id).ok())
}

/// The case an event belongs to: the id in its `case-<uuid>` stream, or, for a submission in a
/// stream not named that way, the id the submission carries.
pub fn case_id_of(env: &EventEnvelope) -> Option<Uuid> {
    id_in(&env.record.stream, "case").or(match &env.event {
        DomainEvent::Case(case::CaseEvent::Submitted(e)) => Some(e.case_id),
        _ => None,
    })
}

/// The user an event belongs to: the id in its `user-<uuid>` stream, or, for a registration in a
/// stream not named that way, the id the registration carries.
pub fn user_id_of(env: &EventEnvelope) -> Option<Uuid> {
    id_in(&env.record.stream, "user").or(match &env.event {
        DomainEvent::User(user::UserEvent::Registered(e)) => Some(e.user_id),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_read_from_stream_names() {
        let id = Uuid::from_u128(7);
        assert_eq!(id_in(&case::stream_name(id), "case"), Some(id));
        assert_eq!(id_in(&user::stream_name(id), "user"), Some(id));
        assert_eq!(id_in(&case::stream_name(id), "user"), None);
        assert_eq!(id_in("case-nonsense", "case"), None);
        assert_eq!(id_in("cases-1", "case"), None);
        assert_eq!(id_in("revocations", "case"), None);
    }
}
