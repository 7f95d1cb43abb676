//! The registry's answers to operators: the session list, kicks, the limiter's figures, and
//! the drain at shutdown.

use actix::prelude::*;
use events::Timestamp;
use serde::Serialize;
use uuid::Uuid;

use super::Registry;

#[derive(Serialize, Clone, Debug)]
pub struct SessionInfo {
    pub id: Uuid,
    pub user_id: Uuid,
    pub username: String,
    pub ip: String,
    pub connected_at: Timestamp,
    pub last_seen_at: Timestamp,
    pub topics: Vec<String>,
}

#[derive(Message)]
#[rtype(result = "Vec<SessionInfo>")]
pub struct ListSessions;

impl Handler<ListSessions> for Registry {
    type Result = MessageResult<ListSessions>;

    fn handle(&mut self, _: ListSessions, _: &mut Context<Self>) -> Self::Result {
        let mut list: Vec<SessionInfo> = self
            .sessions
            .iter()
            .map(|(id, e)| SessionInfo {
                id: *id,
                user_id: e.principal.user_id,
                username: e.principal.username.clone(),
                ip: e.ip.to_string(),
                connected_at: e.connected_at,
                last_seen_at: e.last_seen_at,
                topics: e.topics.iter().map(ToString::to_string).collect(),
            })
            .collect();
        list.sort_by_key(|s| s.connected_at);
        MessageResult(list)
    }
}

/// Closes one session with 4403 `kicked`; answers whether it existed.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct Kick {
    pub id: Uuid,
}

impl Handler<Kick> for Registry {
    type Result = bool;

    fn handle(&mut self, msg: Kick, _: &mut Context<Self>) -> bool {
        let found = self.sessions.contains_key(&msg.id);
        self.close(msg.id, 4403, "kicked");
        found
    }
}

#[derive(Serialize, Clone, Debug)]
pub struct LimitsInfo {
    pub connected_sessions: usize,
    pub connected_users: usize,
    pub tracked_ips: usize,
    pub max_connections: usize,
    pub max_connections_per_user: usize,
    pub connect_attempts_per_ip: u32,
    pub connect_window_seconds: u64,
    pub draining: bool,
}

#[derive(Message)]
#[rtype(result = "LimitsInfo")]
pub struct GetLimits;

impl Handler<GetLimits> for Registry {
    type Result = MessageResult<GetLimits>;

    fn handle(&mut self, _: GetLimits, _: &mut Context<Self>) -> Self::Result {
        MessageResult(LimitsInfo {
            connected_sessions: self.sessions.len(),
            connected_users: self.per_user.len(),
            tracked_ips: self.connects.len(),
            max_connections: self.limits.max_connections,
            max_connections_per_user: self.limits.max_connections_per_user,
            connect_attempts_per_ip: self.limits.connect_attempts_per_ip,
            connect_window_seconds: self.limits.connect_window.as_secs(),
            draining: self.draining,
        })
    }
}

/// Shutdown: refuse new sessions and close every open one with 1001 `going_away`. Answers,
/// with how many there were, once the last one is gone.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct Drain;

impl Handler<Drain> for Registry {
    type Result = ResponseFuture<usize>;

    fn handle(&mut self, _: Drain, _: &mut Context<Self>) -> Self::Result {
        self.draining = true;
        let ids: Vec<Uuid> = self.sessions.keys().copied().collect();
        for id in &ids {
            self.close(*id, 1001, "going_away");
        }
        let open = ids.len();
        if self.sessions.is_empty() {
            return Box::pin(async move { open });
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.drained.push(tx);
        Box::pin(async move {
            let _ = rx.await;
            open
        })
    }
}
