//! The application state every request handler and WebSocket session reaches: the store, the
//! projector, the token service, and the limits and locks the API shares. Its own module, so
//! that `http` and `ws` both use it without depending on each other for it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::Addr;
use events::EventStore;

use crate::auth::{SlidingWindow, TokenService};
use crate::projector::Projector;

/// What every handler may reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn EventStore>,
    pub projector: Addr<Projector>,
    pub tokens: Arc<TokenService>,
    pub claim_lease: Duration,
    pub refresh_ttl: Duration,
    pub login_limits: Arc<LoginLimits>,
    /// Refreshes run one at a time, so a refresh token presented twice at once is caught.
    pub refresh_lock: Arc<tokio::sync::Mutex<()>>,
}

/// Failed logins, per client IP and per username.
pub struct LoginLimits {
    pub per_ip: Mutex<SlidingWindow>,
    pub per_user: Mutex<SlidingWindow>,
}
