//! Server-to-client WebSocket frames, encoded by hand (RFC 6455 §5.2).
//!
//! A server's frames are never masked, so a frame is the same bytes for every client: a push is
//! encoded once, header included, and the same [`Bytes`] is queued for every subscriber (see
//! [`super::outbound`] and `docs/adr/0016-pre-encoded-websocket-frames.md`). Only what the server
//! sends is here; what clients send is parsed by actix-http's codec.

use actix_web::web::{BufMut, Bytes, BytesMut};

const FIN: u8 = 0x80;
const TEXT: u8 = 0x1;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;
/// RFC 6455: a control frame carries at most 125 bytes.
const MAX_CONTROL_PAYLOAD: usize = 125;

/// The bytes of a frame's header for a payload of `len` bytes.
fn header(opcode: u8, len: usize, out: &mut BytesMut) {
    out.put_u8(FIN | opcode);
    if len < 126 {
        out.put_u8(len as u8);
    } else if len <= usize::from(u16::MAX) {
        out.put_u8(126);
        out.put_u16(len as u16);
    } else {
        out.put_u8(127);
        out.put_u64(len as u64);
    }
}

/// Appends a whole text frame carrying `text`.
pub fn put_text(text: &str, out: &mut BytesMut) {
    out.reserve(text.len() + 10);
    header(TEXT, text.len(), out);
    out.put_slice(text.as_bytes());
}

/// A whole text frame carrying `text`, to share among sessions.
pub fn text(text: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(text.len() + 10);
    put_text(text, &mut out);
    out.freeze()
}

/// Appends a ping frame with no payload.
pub fn put_ping(out: &mut BytesMut) {
    header(PING, 0, out);
}

/// Appends a pong frame echoing (at most 125 bytes of) a ping's payload.
pub fn put_pong(payload: &[u8], out: &mut BytesMut) {
    let payload = &payload[..payload.len().min(MAX_CONTROL_PAYLOAD)];
    header(PONG, payload.len(), out);
    out.put_slice(payload);
}

/// Appends a close frame with a code and a reason (cut to 123 bytes on a character boundary).
pub fn put_close(code: u16, reason: &str, out: &mut BytesMut) {
    let mut end = reason.len().min(MAX_CONTROL_PAYLOAD - 2);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    header(CLOSE, 2 + end, out);
    out.put_u16(code);
    out.put_slice(&reason.as_bytes()[..end]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_frame_is_fin_text_unmasked_with_the_shortest_length_form() {
        assert_eq!(&text("hi")[..], b"\x81\x02hi");
        for (len, head) in [
            (125, vec![0x81, 125]),
            (126, vec![0x81, 126, 0, 126]),
            (65_535, vec![0x81, 126, 0xff, 0xff]),
            (65_536, vec![0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]),
        ] {
            let frame = text(&"x".repeat(len));
            assert_eq!(&frame[..head.len()], &head[..], "{len}");
            assert_eq!(frame.len(), head.len() + len, "{len}");
        }
    }

    #[test]
    fn control_frames_stay_within_125_bytes() {
        let mut out = BytesMut::new();
        put_ping(&mut out);
        assert_eq!(&out[..], b"\x89\x00");
        let mut out = BytesMut::new();
        put_pong(&[7; 200], &mut out);
        assert_eq!(&out[..2], b"\x8a\x7d");
        assert_eq!(out.len(), 2 + 125);
        let mut out = BytesMut::new();
        put_close(4401, "token_invalid", &mut out);
        assert_eq!(&out[..], b"\x88\x0f\x11\x31token_invalid");
        let mut out = BytesMut::new();
        put_close(1000, &"\u{e9}".repeat(100), &mut out);
        assert_eq!(
            out[1] as usize,
            2 + 122,
            "cut to 123 bytes on a character boundary"
        );
        assert!(std::str::from_utf8(&out[4..]).is_ok());
    }
}
