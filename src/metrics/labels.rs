//! The label values the metrics accept: small closed enums, so that no label can take an
//! unbounded set of values (no case ids, no user ids, no free text).

use crate::auth::TokenError;

/// Defines a label enum with its wire strings and the list of every value.
macro_rules! label_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The label value as Prometheus shows it.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

label_enum! {
    /// How a WebSocket connection attempt ended: `websocket_connections_total{status}`.
    ConnectionStatus {
        /// Upgraded and authenticated.
        Accepted => "accepted",
        /// Too many connect attempts from the IP (HTTP 429).
        RejectedRateLimited => "rejected_rate_limited",
        /// The node is at its connection limit or draining (HTTP 503).
        RejectedCapacity => "rejected_capacity",
        /// `Origin` not allowed (HTTP 403).
        RejectedOrigin => "rejected_origin",
        /// The token check failed after the upgrade (close 4401/4403).
        AuthFailed => "auth_failed",
        /// The user has too many connections open (close 4429).
        TooManyConnections => "too_many_connections",
    }
}

label_enum! {
    /// Why a WebSocket token check failed: `websocket_auth_failures_total{reason}`; the
    /// protocol's close reasons.
    AuthFailure {
        TokenMissing => "token_missing",
        TokenMalformed => "token_malformed",
        TokenInvalidSignature => "token_invalid_signature",
        TokenExpired => "token_expired",
        TokenWrongType => "token_wrong_type",
        TokenRevoked => "token_revoked",
        UserUnknown => "user_unknown",
        UserDisabled => "user_disabled",
    }
}

impl From<TokenError> for AuthFailure {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Missing => AuthFailure::TokenMissing,
            TokenError::Malformed | TokenError::NotYetValid => AuthFailure::TokenMalformed,
            TokenError::WrongAlgorithm
            | TokenError::BadSignature
            | TokenError::WrongIssuer
            | TokenError::WrongAudience => AuthFailure::TokenInvalidSignature,
            TokenError::Expired => AuthFailure::TokenExpired,
            TokenError::WrongType => AuthFailure::TokenWrongType,
            TokenError::Revoked | TokenError::FamilyRevoked | TokenError::CredentialsChanged => {
                AuthFailure::TokenRevoked
            }
            TokenError::UserUnknown => AuthFailure::UserUnknown,
            TokenError::UserDisabled => AuthFailure::UserDisabled,
        }
    }
}

label_enum! {
    /// The `type` of a message the server sent: `websocket_messages_sent_total{message_type}`.
    MessageType {
        Welcome => "welcome",
        Subscribed => "subscribed",
        Unsubscribed => "unsubscribed",
        Snapshot => "snapshot",
        Update => "update",
        Pong => "pong",
        Authenticated => "authenticated",
        Error => "error",
    }
}

label_enum! {
    /// A session-level error: `websocket_errors_total{error_type}`.
    ErrorType {
        BadMessage => "bad_message",
        UnknownTopic => "unknown_topic",
        ForbiddenTopic => "forbidden_topic",
        ProtocolError => "protocol_error",
        FrameTooBig => "frame_too_big",
        InternalError => "internal_error",
        /// A `subscribe` that would take a session past 256 topics.
        TooManyTopics => "too_many_topics",
    }
}

label_enum! {
    /// Which limit refused something: `websocket_rate_limited_total{limit}`.
    RateLimit {
        /// `--connect-attempts-per-ip` in `--connect-window`.
        ConnectAttempts => "connect_attempts",
        /// `--message-rate` / `--message-burst`.
        MessageRate => "message_rate",
        /// `--max-connections-per-user`.
        ConnectionsPerUser => "connections_per_user",
        /// `--max-connections`.
        MaxConnections => "max_connections",
    }
}

label_enum! {
    /// The kind of a topic (never its id): `registry_subscriptions{topic}`.
    TopicKind {
        Queue => "queue",
        Stats => "stats",
        /// Every `case:<id>` topic together.
        Case => "case",
        Audit => "audit",
    }
}

impl TopicKind {
    /// The kind of a protocol topic name (`queue`, `stats`, `audit`, `case:<id>`), if it is one.
    pub fn of(topic: &str) -> Option<TopicKind> {
        match topic {
            "queue" => Some(TopicKind::Queue),
            "stats" => Some(TopicKind::Stats),
            "audit" => Some(TopicKind::Audit),
            _ if topic.starts_with("case:") => Some(TopicKind::Case),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_kinds_never_carry_ids() {
        assert_eq!(TopicKind::of("case:0190-abc"), Some(TopicKind::Case));
        assert_eq!(TopicKind::of("queue"), Some(TopicKind::Queue));
        assert_eq!(TopicKind::of("nope"), None);
        assert_eq!(TopicKind::Case.as_str(), "case");
    }

    #[test]
    fn auth_failures_use_the_protocol_codes() {
        for e in [
            TokenError::Missing,
            TokenError::NotYetValid,
            TokenError::WrongAudience,
            TokenError::Expired,
            TokenError::WrongType,
            TokenError::FamilyRevoked,
            TokenError::UserUnknown,
            TokenError::UserDisabled,
        ] {
            assert_eq!(AuthFailure::from(e).as_str(), e.code());
        }
    }
}
