//! `adjudicator serve`: open the store, bind the listener, serve until a signal asks to stop.

use actix_web::{web, App, HttpServer};
use anyhow::Context;

use crate::config::Settings;
use crate::http::{self, AppState};

pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    create_data_dir(&settings)?;
    let store = crate::store::open(&settings)?;
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
    let state = AppState { store };
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(state.clone()))
            .configure(http::routes)
    })
    .shutdown_timeout(settings.shutdown_timeout.as_secs().max(1))
    .bind(settings.listen)
    .with_context(|| format!("--listen {}: cannot bind", settings.listen))?;
    for addr in server.addrs() {
        // Tests and scripts read this line to learn the port when listening on port 0.
        tracing::info!("listening on http://{addr}");
    }
    server.run().await.context("the HTTP server failed")?;
    tracing::info!("stopped");
    Ok(())
}

fn create_data_dir(settings: &Settings) -> anyhow::Result<()> {
    let dir = &settings.data_dir;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("--data-dir {}: cannot create it", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir)
            .with_context(|| format!("--data-dir {}", dir.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 && dir.file_name().is_some() {
            // Secrets live here: keep the directory private when we own it.
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        }
    }
    Ok(())
}
