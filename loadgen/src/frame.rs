//! The WebSocket wire format, as much of it as a load generator needs: a streaming reader of
//! server frames that keeps only each message's first bytes (enough to classify it and find its
//! `position`) and skips the rest by length, and the client's masked frames.
//!
//! The reader owns a few hundred bytes per connection and never allocates: bytes are fed to it
//! as they come off the socket, frame headers may be split across reads, and a message is
//! reported once its last byte is in.

/// How many leading payload bytes of a data message are kept. Updates and snapshots name their
/// `type` and `position` in their first 60 bytes; `welcome`, `subscribed` and `error` are JSON
/// maps with their keys in alphabetical order, where `type` comes after about 200 bytes.
pub const PREFIX: usize = 512;

/// Largest payload this reader accepts (a `queue` snapshot is far below it).
const MAX_PAYLOAD: u64 = 1 << 30;

pub const OP_CONTINUATION: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// A complete message, as the reader reports it.
#[derive(Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// A text (or binary) message: its first bytes and its whole length.
    Data {
        prefix: &'a [u8],
        len: u64,
    },
    /// A close frame's status code, if it carried one.
    Close(Option<u16>),
    /// A ping with its payload (to echo in the pong).
    Ping(&'a [u8]),
    Pong,
}

/// Why the byte stream is not a valid sequence of server frames.
#[derive(Debug, PartialEq, Eq)]
pub enum FrameError {
    /// A server frame must not be masked (RFC 6455 §5.1).
    Masked,
    ReservedBits,
    UnknownOpcode(u8),
    /// A control frame that is fragmented or longer than 125 bytes.
    BadControl,
    /// A continuation with no message begun, or a new message before the last one ended.
    BadFragment,
    TooLong(u64),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Masked => f.write_str("masked server frame"),
            FrameError::ReservedBits => f.write_str("reserved bits set"),
            FrameError::UnknownOpcode(op) => write!(f, "unknown opcode {op:#x}"),
            FrameError::BadControl => f.write_str("fragmented or oversized control frame"),
            FrameError::BadFragment => f.write_str("bad fragmentation"),
            FrameError::TooLong(n) => write!(f, "frame of {n} bytes"),
        }
    }
}

/// Reads server frames from a byte stream fed in pieces.
pub struct FrameReader {
    header: [u8; 10],
    header_len: u8,
    in_payload: bool,
    remaining: u64,
    opcode: u8,
    fin: bool,
    /// Opcode of the data message under way (text or binary), 0 when none.
    message_opcode: u8,
    message_len: u64,
    prefix: [u8; PREFIX],
    prefix_len: u16,
    control: [u8; 125],
    control_len: u8,
}

impl Default for FrameReader {
    fn default() -> Self {
        FrameReader {
            header: [0; 10],
            header_len: 0,
            in_payload: false,
            remaining: 0,
            opcode: 0,
            fin: false,
            message_opcode: 0,
            message_len: 0,
            prefix: [0; PREFIX],
            prefix_len: 0,
            control: [0; 125],
            control_len: 0,
        }
    }
}

impl FrameReader {
    /// Consumes `data`, calling `on_message` for every message completed by it.
    pub fn feed(
        &mut self,
        mut data: &[u8],
        mut on_message: impl FnMut(Message<'_>),
    ) -> Result<(), FrameError> {
        loop {
            if !self.in_payload {
                let need = self.header_needed();
                let take = (need - self.header_len as usize).min(data.len());
                self.header[self.header_len as usize..][..take].copy_from_slice(&data[..take]);
                self.header_len += take as u8;
                data = &data[take..];
                // The first two bytes say how long the header is: look again.
                if self.header_len as usize == need && self.header_needed() > need {
                    continue;
                }
                if (self.header_len as usize) < need {
                    return Ok(());
                }
                self.start_payload()?;
            }
            let take = (self.remaining.min(data.len() as u64)) as usize;
            self.keep(&data[..take]);
            self.remaining -= take as u64;
            data = &data[take..];
            if self.remaining > 0 {
                return Ok(());
            }
            self.in_payload = false;
            self.header_len = 0;
            self.finish_frame(&mut on_message);
            if data.is_empty() {
                return Ok(());
            }
        }
    }

    /// The header's full length as far as the bytes so far tell.
    fn header_needed(&self) -> usize {
        if self.header_len < 2 {
            return 2;
        }
        match self.header[1] & 0x7F {
            126 => 4,
            127 => 10,
            _ => 2,
        }
    }

    fn start_payload(&mut self) -> Result<(), FrameError> {
        let (b0, b1) = (self.header[0], self.header[1]);
        if b1 & 0x80 != 0 {
            return Err(FrameError::Masked);
        }
        if b0 & 0x70 != 0 {
            return Err(FrameError::ReservedBits);
        }
        let len = match b1 & 0x7F {
            126 => u64::from(u16::from_be_bytes([self.header[2], self.header[3]])),
            127 => u64::from_be_bytes(self.header[2..10].try_into().expect("8 bytes")),
            n => u64::from(n),
        };
        if len > MAX_PAYLOAD {
            return Err(FrameError::TooLong(len));
        }
        self.fin = b0 & 0x80 != 0;
        self.opcode = b0 & 0x0F;
        match self.opcode {
            OP_CLOSE | OP_PING | OP_PONG => {
                if !self.fin || len > 125 {
                    return Err(FrameError::BadControl);
                }
                self.control_len = 0;
            }
            OP_TEXT | OP_BINARY => {
                if self.message_opcode != 0 {
                    return Err(FrameError::BadFragment);
                }
                self.message_opcode = self.opcode;
                self.message_len = 0;
                self.prefix_len = 0;
            }
            OP_CONTINUATION => {
                if self.message_opcode == 0 {
                    return Err(FrameError::BadFragment);
                }
            }
            other => return Err(FrameError::UnknownOpcode(other)),
        }
        self.message_len += if self.opcode < OP_CLOSE { len } else { 0 };
        self.remaining = len;
        self.in_payload = true;
        Ok(())
    }

    /// Keeps what fits of a payload piece: a control frame whole, a data message's prefix.
    fn keep(&mut self, piece: &[u8]) {
        let (buf, used) = if self.opcode >= OP_CLOSE {
            (&mut self.control[..], self.control_len as usize)
        } else {
            (&mut self.prefix[..], self.prefix_len as usize)
        };
        let n = (buf.len() - used).min(piece.len());
        buf[used..][..n].copy_from_slice(&piece[..n]);
        if self.opcode >= OP_CLOSE {
            self.control_len += n as u8;
        } else {
            self.prefix_len += n as u16;
        }
    }

    fn finish_frame(&mut self, on_message: &mut impl FnMut(Message<'_>)) {
        match self.opcode {
            OP_CLOSE => {
                let c = &self.control[..self.control_len as usize];
                let code = (c.len() >= 2).then(|| u16::from_be_bytes([c[0], c[1]]));
                on_message(Message::Close(code));
            }
            OP_PING => on_message(Message::Ping(&self.control[..self.control_len as usize])),
            OP_PONG => on_message(Message::Pong),
            _ if self.fin => {
                self.message_opcode = 0;
                on_message(Message::Data {
                    prefix: &self.prefix[..self.prefix_len as usize],
                    len: self.message_len,
                });
            }
            _ => {}
        }
    }
}

/// Appends a client frame (FIN set, masked with `mask`) to `out`.
pub fn encode_client(out: &mut Vec<u8>, opcode: u8, payload: &[u8], mask: [u8; 4]) {
    out.push(0x80 | opcode);
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
}

/// Appends an unmasked (server) text frame to `out`: what the calibration sender writes.
pub fn encode_server_text(out: &mut Vec<u8>, payload: &[u8]) {
    out.push(0x80 | OP_TEXT);
    match payload.len() {
        n @ 0..=125 => out.push(n as u8),
        n @ 126..=0xFFFF => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Owned copies of what the reader reported.
    #[derive(Debug, PartialEq, Eq)]
    enum Got {
        Data(Vec<u8>, u64),
        Close(Option<u16>),
        Ping(Vec<u8>),
        Pong,
    }

    fn feed_in_pieces(bytes: &[u8], piece: usize) -> Result<Vec<Got>, FrameError> {
        let mut reader = FrameReader::default();
        let mut got = Vec::new();
        for chunk in bytes.chunks(piece.max(1)) {
            reader.feed(chunk, |m| {
                got.push(match m {
                    Message::Data { prefix, len } => Got::Data(prefix.to_vec(), len),
                    Message::Close(code) => Got::Close(code),
                    Message::Ping(p) => Got::Ping(p.to_vec()),
                    Message::Pong => Got::Pong,
                })
            })?;
        }
        Ok(got)
    }

    fn text(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_server_text(&mut out, payload);
        out
    }

    #[test]
    fn reads_every_length_form_whatever_the_read_boundaries() {
        let short = b"{\"type\":\"update\",\"position\":7}".to_vec();
        let medium = vec![b'm'; 700];
        let long = vec![b'l'; 70_000];
        let mut stream = text(&short);
        stream.extend(text(&medium));
        stream.extend(text(&long));
        stream.extend(text(b""));
        for piece in [1, 2, 3, 7, 100, 4096, stream.len()] {
            let got = feed_in_pieces(&stream, piece).unwrap();
            assert_eq!(
                got,
                vec![
                    Got::Data(short.clone(), short.len() as u64),
                    Got::Data(medium[..PREFIX].to_vec(), 700),
                    Got::Data(long[..PREFIX].to_vec(), 70_000),
                    Got::Data(Vec::new(), 0),
                ],
                "pieces of {piece}"
            );
        }
    }

    #[test]
    fn control_frames_between_fragments_do_not_disturb_the_message() {
        let mut stream = vec![OP_TEXT, 3]; // not FIN
        stream.extend(b"abc");
        stream.extend([0x80 | OP_PING, 2, b'h', b'i']);
        stream.extend([0x80 | OP_CONTINUATION, 2]);
        stream.extend(b"de");
        stream.extend([0x80 | OP_PONG, 0]);
        stream.extend([0x80 | OP_CLOSE, 2, 0x03, 0xF5]); // 1013
        stream.extend([0x80 | OP_CLOSE, 0]);
        for piece in [1, 5, stream.len()] {
            assert_eq!(
                feed_in_pieces(&stream, piece).unwrap(),
                vec![
                    Got::Ping(b"hi".to_vec()),
                    Got::Data(b"abcde".to_vec(), 5),
                    Got::Pong,
                    Got::Close(Some(1013)),
                    Got::Close(None),
                ]
            );
        }
    }

    #[test]
    fn refuses_what_a_server_must_not_send() {
        let bad = |bytes: &[u8]| feed_in_pieces(bytes, bytes.len()).unwrap_err();
        assert_eq!(bad(&[0x81, 0x80 | 1, 0, 0, 0, 0, b'x']), FrameError::Masked);
        assert_eq!(bad(&[0xC1, 0]), FrameError::ReservedBits);
        assert_eq!(bad(&[0x83, 0]), FrameError::UnknownOpcode(3));
        assert_eq!(bad(&[0x09, 0]), FrameError::BadControl);
        assert_eq!(bad(&[0x89, 126, 0, 126]), FrameError::BadControl);
        assert_eq!(bad(&[0x80, 0]), FrameError::BadFragment);
        assert_eq!(bad(&[0x01, 0, 0x81, 0]), FrameError::BadFragment);
        let mut huge = vec![0x81, 127];
        huge.extend((2u64 << 30).to_be_bytes());
        assert_eq!(bad(&huge), FrameError::TooLong(2 << 30));
    }

    #[test]
    fn client_frames_are_masked_and_round_trip() {
        for len in [0usize, 5, 125, 126, 65_535, 65_536] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mask = [0x12, 0x34, 0x56, 0x78];
            let mut out = Vec::new();
            encode_client(&mut out, OP_TEXT, &payload, mask);
            assert_eq!(out[0], 0x81);
            assert_ne!(out[1] & 0x80, 0, "masked");
            let header = match out[1] & 0x7F {
                126 => 4,
                127 => 10,
                _ => 2,
            };
            assert_eq!(&out[header..header + 4], &mask);
            let unmasked: Vec<u8> = out[header + 4..]
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ mask[i % 4])
                .collect();
            assert_eq!(unmasked, payload, "length {len}");
        }
    }
}
