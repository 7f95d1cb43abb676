//! HTTPS and `wss://` from the binary: rustls (with *ring*, no OpenSSL) and a certificate
//! resolver whose pair is swapped on SIGHUP.
//!
//! * [`pair`]: loading and checking a certificate chain and its key from PEM files.
//! * [`ReloadingResolver`]: hands every handshake the current pair; [`ReloadingResolver::reload`]
//!   reads the files again and swaps the pair only if the new one loads, so a bad renewal keeps
//!   the server serving the old certificate (and says so in the log).

pub mod pair;

use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

use crate::config::TlsFiles;
use pair::PairError;

/// The crypto of every TLS connection: *ring*'s provider.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificate every handshake gets, replaceable while the server runs.
#[derive(Debug)]
pub struct ReloadingResolver {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ReloadingResolver {
    /// Loads the pair once; an error stops the start.
    pub fn load(files: TlsFiles, provider: Arc<CryptoProvider>) -> Result<Self, PairError> {
        let current = pair::load(&files, &provider)?;
        Ok(ReloadingResolver {
            files,
            provider,
            current: RwLock::new(Arc::new(current)),
        })
    }

    /// Reads the files again; on success new handshakes get the new pair (open connections keep
    /// theirs), on failure nothing changes and the error is returned for the log.
    pub fn reload(&self) -> Result<(), PairError> {
        let fresh = Arc::new(pair::load(&self.files, &self.provider)?);
        let mut current = self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *current = fresh;
        Ok(())
    }

    /// The files it reads.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// The pair handshakes get now.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

impl ResolvesServerCert for ReloadingResolver {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// The server's TLS configuration: TLS 1.2 and 1.3 with *ring*'s safe defaults, no client
/// certificates, the resolver's pair. (actix-web adds the `http/1.1` ALPN protocol.)
pub fn server_config(
    resolver: Arc<ReloadingResolver>,
    provider: Arc<CryptoProvider>,
) -> Result<ServerConfig, rustls::Error> {
    Ok(ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(resolver))
}

/// Listens for SIGHUP from the moment it is called (before the "listening on" line, so that a
/// SIGHUP never meets the default action, which ends the process), and answers a future that
/// reloads the pair on each one, logging the outcome. Without TLS there is nothing to reload: the
/// signal is logged and ignored, so `systemctl reload` never stops the server.
pub fn reload_on_sighup(
    resolver: Option<Arc<ReloadingResolver>>,
) -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
    async move {
        #[cfg(unix)]
        {
            let mut hangups = match hangups {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(
                        "cannot listen for SIGHUP; TLS certificates will not reload: {e}"
                    );
                    return;
                }
            };
            while hangups.recv().await.is_some() {
                match &resolver {
                    None => tracing::info!("SIGHUP: no --tls-cert, nothing to reload"),
                    Some(resolver) => reload_now(resolver).await,
                }
            }
        }
        #[cfg(not(unix))]
        drop(resolver);
    }
}

/// Reloads the pair on a blocking thread (it reads files) and logs the outcome.
async fn reload_now(resolver: &Arc<ReloadingResolver>) {
    let target = resolver.clone();
    let outcome = tokio::task::spawn_blocking(move || target.reload()).await;
    let files = resolver.files();
    match outcome {
        Ok(Ok(())) => tracing::info!(
            cert = %files.cert.display(),
            "SIGHUP: reloaded the TLS certificate and key"
        ),
        Ok(Err(e)) => tracing::error!(
            "SIGHUP: kept the previous TLS certificate and key, the new ones do not load: {e}"
        ),
        Err(e) => tracing::error!("SIGHUP: the TLS reload task failed: {e}"),
    }
}

#[cfg(test)]
mod tests;
