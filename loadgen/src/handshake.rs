//! The HTTP/1.1 upgrade that opens a WebSocket (RFC 6455 §4): the client's request and the check
//! of the server's answer, and (for the calibration sender) the server's side of it.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha1::{Digest, Sha1};

const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Largest upgrade answer (status line and headers) accepted.
pub const MAX_HEAD: usize = 8 * 1024;

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`.
pub fn accept_for(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(GUID.as_bytes());
    STANDARD.encode(sha.finalize())
}

/// A client's upgrade request for `path_and_query` on `host`, and the accept value it expects.
pub fn request(host: &str, path_and_query: &str, nonce: [u8; 16]) -> (Vec<u8>, String) {
    let key = STANDARD.encode(nonce);
    let text = format!(
        "GET {path_and_query} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    (text.into_bytes(), accept_for(&key))
}

/// Where the head of an HTTP message ends (just past the blank line), if it is all in `buf`.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// Checks a complete upgrade answer: status 101 and the expected `Sec-WebSocket-Accept`.
/// The error is a short reason, e.g. `HTTP 429`.
pub fn check_answer(head: &[u8], expected_accept: &str) -> Result<(), String> {
    let text = std::str::from_utf8(head).map_err(|_| "upgrade answer is not UTF-8".to_owned())?;
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .ok_or_else(|| "no status line".to_owned())?;
    if status != "101" {
        return Err(format!("HTTP {status}"));
    }
    let accept = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("sec-websocket-accept"))
        .map(|(_, value)| value.trim());
    match accept {
        Some(a) if a == expected_accept => Ok(()),
        Some(_) => Err("wrong Sec-WebSocket-Accept".into()),
        None => Err("no Sec-WebSocket-Accept".into()),
    }
}

/// The server's answer to a complete upgrade request (calibration sender only).
pub fn answer_for(request_head: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(request_head).ok()?;
    let key = text
        .split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("sec-websocket-key"))?
        .1
        .trim();
    Some(
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n\r\n",
            accept_for(key)
        )
        .into_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_example_key_gives_the_rfc_accept() {
        // RFC 6455 §1.3.
        assert_eq!(
            accept_for("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn a_request_and_its_answer_agree() {
        let (req, accept) = request("127.0.0.1:1", "/api/v1/ws?token=t", [7; 16]);
        let end = head_end(&req).unwrap();
        assert_eq!(end, req.len());
        assert!(req.starts_with(b"GET /api/v1/ws?token=t HTTP/1.1\r\nHost: 127.0.0.1:1\r\n"));
        let answer = answer_for(&req).unwrap();
        assert_eq!(check_answer(&answer, &accept), Ok(()));
        assert_eq!(
            check_answer(&answer, "something else"),
            Err("wrong Sec-WebSocket-Accept".into())
        );
    }

    #[test]
    fn refusals_name_their_status() {
        let refused = b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\n\r\n";
        assert_eq!(check_answer(refused, "x"), Err("HTTP 429".into()));
        let no_accept = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n";
        assert_eq!(
            check_answer(no_accept, "x"),
            Err("no Sec-WebSocket-Accept".into())
        );
        assert_eq!(head_end(b"HTTP/1.1 101 OK\r\n"), None);
    }
}
