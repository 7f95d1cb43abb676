//! The application state every request handler and WebSocket session reaches: the store, the
//! projector, the token service, and the limits the API shares. Its own module, so that `http`
//! and `ws` both use it without depending on each other for it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use events::EventStore;

use crate::auth::{LoginLimiter, PasswordGate, SlidingWindow, TokenService};
use crate::metrics::MeteredAddr;
use crate::projector::Projector;

/// What every handler may reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn EventStore>,
    pub projector: MeteredAddr<Projector>,
    pub tokens: Arc<TokenService>,
    pub claim_lease: Duration,
    pub refresh_ttl: Duration,
    /// Login attempts (see [`crate::auth::login_limits`]).
    pub login_limits: Arc<Mutex<LoginLimiter>>,
    /// Refresh attempts.
    pub refresh_limits: Arc<Mutex<RefreshLimits>>,
    /// The bound on concurrent argon2 runs (logins, new passwords).
    pub password_gate: PasswordGate,
}

/// Refresh attempts per client IP and per refresh family, each in a one-minute window.
pub struct RefreshLimits {
    pub per_ip: SlidingWindow,
    pub per_family: SlidingWindow,
}

impl RefreshLimits {
    pub fn new(per_ip: u32, per_family: u32) -> Self {
        let minute = Duration::from_secs(60);
        RefreshLimits {
            per_ip: SlidingWindow::new(per_ip, minute),
            per_family: SlidingWindow::new(per_family, minute),
        }
    }
}
