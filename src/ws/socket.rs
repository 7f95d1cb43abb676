//! The TCP connection under a WebSocket, so that a session can drop it when a client will not
//! take its close.
//!
//! actix-web owns the connection and writes to it only as fast as the client reads; a client that
//! stops reading keeps it (and the frames buffered for it) forever, and nothing the session holds
//! can end it: dropping the session's handles only ends the response body, which the server does
//! not look at while its write buffer is full. So every connection keeps a duplicate of its
//! socket's descriptor in the connection's data ([`on_connect`]); the session holds a weak reference to
//! it, which dies with the connection. When a close has not got through by its deadline,
//! [`ConnectionSocket::reset`] shuts the socket down: actix-web's next write fails, it drops the
//! connection, and the client gets a reset. The cost is one more descriptor per open connection.
//!
//! The same descriptor lets a session write its frames straight into a plain TCP socket once the
//! upgrade's answer is out (`outbound/direct.rs`); for that the connection also counts its
//! requests ([`count_request`]): only a WebSocket opened by a connection's first request is
//! known to have nothing of actix-web's still unwritten before its frames.

use std::any::Any;
use std::net::Shutdown;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Extensions, ServiceRequest};
use actix_web::rt::net::TcpStream;

/// A duplicate of a connection's socket descriptor; closed when the connection's data is
/// dropped, that is when actix-web is done with the connection (and when the session's writer
/// lets go of it: `outbound/direct.rs`).
pub struct ConnectionSocket {
    fd: OwnedFd,
    /// Plain TCP: what is written to the descriptor reaches the client as it is (not under TLS).
    plain: bool,
    /// Requests read on the connection so far.
    requests: AtomicU32,
}

impl ConnectionSocket {
    /// A connection's socket; `plain`: not under TLS.
    pub fn new(fd: OwnedFd, plain: bool) -> Self {
        ConnectionSocket {
            fd,
            plain,
            requests: AtomicU32::new(0),
        }
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Whether frames may be written straight into the socket: plain TCP, and the WebSocket
    /// was opened by the connection's first request, so that actix-web has nothing of an earlier
    /// answer still to write when the upgrade's answer is out.
    pub fn writable_directly(&self) -> bool {
        self.plain && self.requests.load(Ordering::Relaxed) == 1
    }

    /// Ends the connection now, whatever is still unsent: the peer gets a reset.
    pub fn reset(&self) {
        let socket = socket2::SockRef::from(&self.fd);
        // Unsent data is discarded and the last close sends a reset, instead of lingering in
        // the kernel behind a window the client keeps shut.
        let _ = socket.set_linger(Some(Duration::ZERO));
        let _ = socket.shutdown(Shutdown::Both);
    }
}

/// For `HttpServer::on_connect`: keeps a duplicate of the descriptor of a TCP connection, plain
/// or under TLS (`--tls-cert`), in the connection's data, where the WebSocket route finds it
/// (`HttpRequest::conn_data`).
pub fn on_connect(connection: &dyn Any, data: &mut Extensions) {
    type Tls = actix_tls::accept::rustls_0_23::TlsStream<TcpStream>;
    let (tcp, plain) = match connection.downcast_ref::<TcpStream>() {
        Some(tcp) => (tcp, true),
        None => match connection.downcast_ref::<Tls>() {
            Some(tls) => (tls.get_ref().0, false),
            None => return,
        },
    };
    match tcp.as_fd().try_clone_to_owned() {
        Ok(fd) => {
            data.insert(Arc::new(ConnectionSocket::new(fd, plain)));
        }
        Err(e) => tracing::warn!("cannot keep a handle on a new connection: {e}"),
    }
}

/// Counts a request on its connection (see [`ConnectionSocket::writable_directly`]); every
/// request passes here (`server.rs`).
pub fn count_request(req: &ServiceRequest) {
    if let Some(socket) = req.conn_data::<Arc<ConnectionSocket>>() {
        socket.requests.fetch_add(1, Ordering::Relaxed);
    }
}
