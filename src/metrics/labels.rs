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
        /// Subscribes per session (5 a second, bursts of 10).
        SubscribeRate => "subscribe_rate",
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

label_enum! {
    /// An actor kind: `actor_mailbox_backlog{actor}`, `actor_messages_handled_total{actor}`,
    /// `actor_restarts_total{actor}`. The session actors count together, never one by one.
    ActorKind {
        Registry => "registry",
        Projector => "projector",
        Session => "session",
    }
}

label_enum! {
    /// Why a session actor stopped: `session_actors_stopped_total{reason}`. The protocol's close
    /// reasons, plus `client_closed` (the client sent a close frame) and `connection_lost` (the
    /// connection ended without one).
    StopReason {
        ClientClosed => "client_closed",
        ConnectionLost => "connection_lost",
        GoingAway => "going_away",
        FrameTooBig => "frame_too_big",
        InternalError => "internal_error",
        SlowConsumer => "slow_consumer",
        ProtocolError => "protocol_error",
        TokenExpired => "token_expired",
        TokenRevoked => "token_revoked",
        UserDisabled => "user_disabled",
        Kicked => "kicked",
        HeartbeatTimeout => "heartbeat_timeout",
        TooManyConnections => "too_many_connections",
        MessageRate => "message_rate",
    }
}

impl StopReason {
    /// The label of a close reason the server sent (`"normal"` is a close the client asked for).
    pub fn of_close(reason: &str) -> StopReason {
        match reason {
            "normal" => StopReason::ClientClosed,
            other => StopReason::ALL
                .iter()
                .copied()
                .find(|r| r.as_str() == other)
                .unwrap_or(StopReason::InternalError),
        }
    }

    /// A close for a limit, which operators want to see in the log at `warn`.
    pub fn is_limit(self) -> bool {
        matches!(
            self,
            StopReason::SlowConsumer
                | StopReason::Kicked
                | StopReason::HeartbeatTimeout
                | StopReason::TooManyConnections
                | StopReason::MessageRate
        )
    }
}

label_enum! {
    /// An HTTP request method: `http_requests_total{method}`; anything else is `other`.
    HttpMethod {
        Get => "GET",
        Post => "POST",
        Put => "PUT",
        Patch => "PATCH",
        Delete => "DELETE",
        Head => "HEAD",
        Options => "OPTIONS",
        Other => "other",
    }
}

impl HttpMethod {
    pub fn of(method: &str) -> HttpMethod {
        HttpMethod::ALL
            .iter()
            .copied()
            .find(|m| m.as_str() == method)
            .unwrap_or(HttpMethod::Other)
    }
}

label_enum! {
    /// The class of an HTTP status: `http_requests_total{status_class}`.
    StatusClass {
        Informational => "1xx",
        Success => "2xx",
        Redirection => "3xx",
        ClientError => "4xx",
        ServerError => "5xx",
    }
}

impl StatusClass {
    pub fn of(status: u16) -> StatusClass {
        match status {
            ..=199 => StatusClass::Informational,
            200..=299 => StatusClass::Success,
            300..=399 => StatusClass::Redirection,
            400..=499 => StatusClass::ClientError,
            _ => StatusClass::ServerError,
        }
    }
}

/// The `route` label of a request that matched no route: one value for every unknown path,
/// so that scanners cannot grow the label set.
pub const UNMATCHED_ROUTE: &str = "unmatched";

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
    fn closed_sets_for_stop_reasons_methods_and_status_classes() {
        assert_eq!(StopReason::of_close("normal"), StopReason::ClientClosed);
        assert_eq!(
            StopReason::of_close("slow_consumer"),
            StopReason::SlowConsumer
        );
        assert_eq!(StopReason::of_close("whatever"), StopReason::InternalError);
        assert!(StopReason::Kicked.is_limit() && !StopReason::GoingAway.is_limit());
        assert_eq!(HttpMethod::of("PATCH"), HttpMethod::Patch);
        assert_eq!(HttpMethod::of("BREW"), HttpMethod::Other);
        assert_eq!(StatusClass::of(101).as_str(), "1xx");
        assert_eq!(StatusClass::of(204).as_str(), "2xx");
        assert_eq!(StatusClass::of(429).as_str(), "4xx");
        assert_eq!(StatusClass::of(503).as_str(), "5xx");
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
