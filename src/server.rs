//! `adjudicator serve`: check that the data directory and the secrets are private, open the
//! store, load the read models, make sure there is a first admin (and the demo data with
//! `--demo`, on a new or demo store only), start the projector and the lease keeper, and serve
//! HTTP (or HTTPS with `--tls-cert`/`--tls-key`, reloaded on SIGHUP) until SIGTERM or SIGINT;
//! then save the read models.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::Actor;
use actix_web::{web, App, HttpServer};
use anyhow::Context;
use projections::Projections;

use crate::auth::{
    load_or_create_secret, LoginLimitSettings, LoginLimiter, PasswordGate, TokenService,
};
use crate::config::Settings;
use crate::demo_store::{self, DemoPlan};
use crate::http;
use crate::http::json::BodyLimit;
use crate::lease::LeaseKeeper;
use crate::metrics::{ActorKind, MeteredAddr};
use crate::projector::{
    snapshot_file, startup, Projector, ProjectorConfig, SaveSnapshot, SnapshotFile, SnapshotKey,
    WithModels,
};
use crate::state::{AppState, RefreshLimits};
use crate::tls::{self, ReloadingResolver};
use crate::ws::registry::{Drain, Limits, Registry};
use crate::ws::session::SessionConfig;
use crate::ws::WsContext;

pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    crate::private_files::prepare_data_dir(&settings.data_dir)?;
    crate::private_files::check_secret_files(&settings)?;
    let tls = match &settings.tls {
        None => None,
        Some(files) => {
            let provider = tls::provider();
            let resolver = Arc::new(ReloadingResolver::load(files.clone(), provider.clone())?);
            let config =
                tls::server_config(resolver.clone(), provider).context("cannot set up TLS")?;
            Some((resolver, config))
        }
    };
    let tokens =
        Arc::new(TokenService::from_settings(&settings).context("cannot load the token keys")?);
    let snapshot_key = SnapshotKey::derive(
        load_or_create_secret(
            &settings.jwt_secret_file,
            settings.jwt_secret_file_is_default(),
        )?
        .expose(),
    );
    let snapshot = SnapshotFile {
        path: settings.data_dir.join(snapshot_file::FILE_NAME),
        key: snapshot_key,
    };
    // The snapshot needs no store to be read and decoded: that runs on a blocking thread while
    // the store opens and checks its pages (on a machine with a second core the two overlap).
    // Nothing is served, and nothing trusts the snapshot, before both are done and the snapshot's
    // anchor is found in the checked store.
    let to_decode = snapshot.clone();
    let decoding = tokio::task::spawn_blocking(move || startup::decode(&to_decode));
    let store = crate::store::open(&settings).await?;
    let head = store
        .head_position()
        .await
        .context("cannot read the event store's head position")?;
    tracing::info!(
        store = %settings.store,
        data_dir = %settings.data_dir.display(),
        head_position = head,
        "event store open"
    );
    let demo = demo_store::plan(
        settings.demo,
        demo_store::store_kind(store.as_ref()).await?,
        settings.listen,
    )?;
    if demo.is_demo() {
        tracing::warn!("{}", demo_store::WARNING);
    }
    if demo == DemoPlan::MarkAndFill {
        demo_store::mark(store.as_ref())
            .await
            .context("cannot mark the store as a demo store")?;
    }
    let decoded = decoding
        .await
        .unwrap_or_else(|e| Err(format!("snapshot read task failed: {e}")));
    let start = startup::anchor(store.as_ref(), &snapshot, decoded).await;
    if let Some(why) = &start.ignored {
        tracing::warn!("snapshot ignored, replaying from the start: {why}");
    }
    tracing::info!(position = start.models.position(), "read models loaded");
    crate::metrics::metrics().set_projection_position(start.models.position());
    let config = ProjectorConfig {
        snapshot: Some(snapshot),
        snapshot_every_events: settings.snapshot_every,
        snapshot_interval: settings.snapshot_interval,
        token_leeway: settings.jwt_leeway,
        ..ProjectorConfig::default()
    };
    let projector = MeteredAddr::new(
        Projector::new(store.clone(), start.models, start.anchor, config).start(),
        ActorKind::Projector,
    );

    // Judge "no users yet" on the whole history, not on a half-replayed model.
    crate::projector::startup::caught_up(&projector, head).await?;
    let (users, cases) = projector
        .send(WithModels::new(|m: &Projections| {
            (m.users().len(), m.cases().len())
        }))
        .await?;
    if users == 0 {
        crate::bootstrap::first_admin(store.as_ref(), &settings.data_dir).await?;
    }
    if matches!(demo, DemoPlan::MarkAndFill | DemoPlan::Fill) {
        crate::bootstrap::demo(store.as_ref(), cases > 0).await?;
    }
    // Serve only once the read models hold what bootstrap just appended: a login right after
    // the "listening on" line must find the first admin and the demo users.
    let head = store
        .head_position()
        .await
        .context("cannot read the event store's head position")?;
    crate::projector::startup::caught_up(&projector, head).await?;

    LeaseKeeper::new(store.clone(), projector.clone()).start();
    let registry_state = Registry::new(
        Limits {
            max_connections: settings.max_connections,
            max_connections_per_user: settings.max_connections_per_user as usize,
            connect_attempts_per_ip: settings.connect_attempts_per_ip,
            connect_window: settings.connect_window,
            heartbeat_interval: settings.heartbeat_interval,
            heartbeat_missed: settings.heartbeat_missed,
        },
        projector.clone(),
        head,
    )
    .with_log(store.clone(), settings.resume_buffer_updates);
    // The registry has a thread of its own: a fan-out writes to every subscriber's socket, and
    // the projector (on this thread) must not wait behind it to apply the next event and let its
    // HTTP request be answered.
    let registry_thread = actix::Arbiter::new();
    let registry = Registry::start_in_arbiter(&registry_thread.handle(), move |_| registry_state);
    let registry = MeteredAddr::new(registry, ActorKind::Registry);
    let ws = WsContext {
        registry: registry.clone(),
        session: SessionConfig {
            heartbeat_interval: settings.heartbeat_interval,
            heartbeat_missed: settings.heartbeat_missed,
            message_rate: settings.message_rate,
            message_burst: settings.message_burst,
            max_bad_messages: settings.max_bad_messages,
            outbound_messages: settings.outbound_queue_messages,
            outbound_bytes: settings.outbound_queue_bytes,
        },
        max_frame_bytes: settings.max_frame_bytes,
        allowed_origins: settings.allowed_origins.clone(),
    };
    let state = AppState {
        store,
        projector: projector.clone(),
        tokens,
        claim_lease: settings.claim_lease,
        refresh_ttl: settings.refresh_token_ttl,
        login_limits: Arc::new(Mutex::new(LoginLimiter::new(LoginLimitSettings {
            per_ip: settings.login_failures_per_ip,
            per_user_and_ip: settings.login_failures_per_user,
            per_user_global: settings.login_failures_per_user_global,
            window: settings.login_window,
            known_good_for: settings.refresh_token_ttl,
        }))),
        refresh_limits: Arc::new(Mutex::new(RefreshLimits::new(
            settings.refresh_rate_per_ip,
            settings.refresh_rate_per_family,
        ))),
        password_gate: PasswordGate::per_core(),
    };
    let trusted_proxies = web::Data::new(settings.trusted_proxies.clone());
    let body_limit = BodyLimit(settings.max_body_bytes);
    let https = tls.is_some();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(state.clone()))
            .app_data(web::Data::new(body_limit))
            .app_data(web::Data::new(ws.clone()))
            .app_data(trusted_proxies.clone())
            .app_data(http::errors::query_config())
            .app_data(http::errors::path_config())
            .wrap(http::headers::every_answer(https))
            .wrap(http::access_log::AccessLog)
            .configure(crate::routes::routes)
            .default_service(web::to(http::errors::not_found))
    })
    .on_connect(crate::ws::socket::on_connect)
    // A WebSocket's write buffer must not grow to a snapshot's size: see `ws/outbound/mod.rs`.
    .h1_write_buffer_size(crate::ws::outbound::MAX_CHUNK)
    .shutdown_timeout(settings.shutdown_timeout.as_secs().max(1))
    .disable_signals();
    let bound = match tls {
        None => {
            actix_web::rt::spawn(tls::reload_on_sighup(None));
            server.bind(settings.listen)
        }
        Some((resolver, config)) => {
            actix_web::rt::spawn(tls::reload_on_sighup(Some(resolver)));
            server.bind_rustls_0_23(settings.listen, config)
        }
    };
    let server = bound.with_context(|| format!("--listen {}: cannot bind", settings.listen))?;
    let signals = ShutdownSignals::listen();
    let scheme = if https { "https" } else { "http" };
    for addr in server.addrs() {
        // Tests and scripts read this line to learn the port when listening on port 0.
        tracing::info!("listening on {scheme}://{addr}");
    }
    let server = server.run();
    let handle = server.handle();
    let deadline = settings.shutdown_timeout;
    actix_web::rt::spawn(async move {
        let signal = signals.recv().await;
        tracing::info!("{signal}: shutting down");
        // Answers once every session is gone, or gives up at the deadline.
        match tokio::time::timeout(deadline, registry.send(Drain)).await {
            Ok(Ok(open)) => tracing::info!("closed {open} WebSocket sessions (1001 going_away)"),
            _ => tracing::warn!("WebSocket sessions did not all close within the shutdown timeout"),
        }
        // Stops accepting, lets in-flight requests (and their appends) finish.
        handle.stop(true).await;
    });
    server.await.context("the HTTP server failed")?;
    registry_thread.stop();
    let saved = tokio::time::timeout(Duration::from_secs(30), projector.send(SaveSnapshot)).await;
    match saved {
        Ok(Ok(Ok(()))) => tracing::info!("read models saved"),
        Ok(Ok(Err(e))) => tracing::error!("cannot save the read models: {e}"),
        Ok(Err(e)) => tracing::error!("cannot reach the projector: {e}"),
        Err(_) => tracing::error!("saving the read models took too long"),
    }
    tracing::info!("stopped");
    Ok(())
}

/// SIGTERM and SIGINT, listened for from the moment this is made: made before the "listening
/// on" line, so that a signal sent as soon as the server says it listens is never met by the
/// default action (an abrupt exit without draining or saving).
struct ShutdownSignals {
    #[cfg(unix)]
    unix: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl ShutdownSignals {
    fn listen() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let unix = signal(SignalKind::terminate())
                .and_then(|term| Ok((term, signal(SignalKind::interrupt())?)))
                .ok();
            ShutdownSignals { unix }
        }
        #[cfg(not(unix))]
        ShutdownSignals {}
    }

    /// Waits for the first signal; answers which.
    async fn recv(self) -> &'static str {
        #[cfg(unix)]
        if let Some((mut term, mut int)) = self.unix {
            return tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
        }
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}
