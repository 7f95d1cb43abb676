//! Finding a server message's `type`, `position` and `code` in its first bytes without parsing
//! the JSON: a walk over the top-level object's keys that skips every value it does not want
//! (nested objects, arrays and strings included, so a case's own `position` inside `data` is
//! never mistaken for the message's). A field cut off by the end of the prefix is not found.

/// What kind of server message a text frame is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Welcome,
    Subscribed,
    Snapshot,
    Update,
    Error,
    Other,
}

/// The fields of a server message that the load generator looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head<'a> {
    pub kind: Kind,
    pub position: Option<u64>,
    /// An `error`'s `code`, unescaped only if it needs no unescaping.
    pub code: Option<&'a [u8]>,
}

/// Reads the head of a message from its first bytes. Stops as soon as it has `type` and
/// `position` (or `type` and `code` for an error).
pub fn head(json: &[u8]) -> Head<'_> {
    let mut h = Head {
        kind: Kind::Other,
        position: None,
        code: None,
    };
    let mut typed = false;
    for (key, value) in Fields::new(json) {
        match key {
            b"type" => {
                typed = true;
                h.kind = match string(value) {
                    Some(b"update") => Kind::Update,
                    Some(b"snapshot") => Kind::Snapshot,
                    Some(b"welcome") => Kind::Welcome,
                    Some(b"subscribed") => Kind::Subscribed,
                    Some(b"error") => Kind::Error,
                    _ => Kind::Other,
                };
            }
            b"position" => h.position = number(value),
            b"code" => h.code = string(value),
            _ => {}
        }
        if typed && (h.position.is_some() || h.code.is_some()) {
            break;
        }
    }
    h
}

/// A string value's contents (between the quotes), if it has no escapes.
fn string(raw: &[u8]) -> Option<&[u8]> {
    let inner = raw.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    (!inner.contains(&b'\\')).then_some(inner)
}

/// An unsigned integer value.
fn number(raw: &[u8]) -> Option<u64> {
    if raw.is_empty() || raw.len() > 19 || !raw.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(raw.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

/// The top-level `(key, raw value)` pairs of a JSON object, in order, as far as the bytes go.
/// Keys are given as written (escapes not undone); values raw (strings with their quotes).
pub struct Fields<'a> {
    s: &'a [u8],
    i: usize,
    started: bool,
}

impl<'a> Fields<'a> {
    pub fn new(s: &'a [u8]) -> Self {
        Fields {
            s,
            i: 0,
            started: false,
        }
    }

    fn skip_ws(&mut self) {
        while self
            .s
            .get(self.i)
            .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        {
            self.i += 1;
        }
    }

    /// Moves past the string starting at `i` (on its opening quote); false if it is cut off.
    fn skip_string(&mut self) -> bool {
        let mut j = self.i + 1;
        while j < self.s.len() {
            match self.s[j] {
                b'\\' => j += 2,
                b'"' => {
                    self.i = j + 1;
                    return true;
                }
                _ => j += 1,
            }
        }
        false
    }

    /// Moves past the value at `i`; false if it is cut off.
    fn skip_value(&mut self) -> bool {
        match self.s.get(self.i) {
            None => false,
            Some(b'"') => self.skip_string(),
            Some(b'{' | b'[') => {
                let mut depth = 0usize;
                while let Some(&b) = self.s.get(self.i) {
                    match b {
                        b'"' => {
                            if !self.skip_string() {
                                return false;
                            }
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.i += 1;
                                return true;
                            }
                        }
                        _ => {}
                    }
                    self.i += 1;
                }
                false
            }
            Some(_) => {
                // A number or a literal: runs to the next delimiter, which must be there.
                while let Some(&b) = self.s.get(self.i) {
                    if matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n') {
                        return true;
                    }
                    self.i += 1;
                }
                false
            }
        }
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        self.skip_ws();
        if !self.started {
            if self.s.get(self.i) != Some(&b'{') {
                return None;
            }
            self.started = true;
            self.i += 1;
        } else {
            match self.s.get(self.i) {
                Some(b',') => self.i += 1,
                _ => return None,
            }
        }
        self.skip_ws();
        if self.s.get(self.i) != Some(&b'"') {
            return None;
        }
        let key_start = self.i + 1;
        if !self.skip_string() {
            return None;
        }
        let key = &self.s[key_start..self.i - 1];
        self.skip_ws();
        if self.s.get(self.i) != Some(&b':') {
            return None;
        }
        self.i += 1;
        self.skip_ws();
        let value_start = self.i;
        if !self.skip_value() {
            return None;
        }
        Some((key, &self.s[value_start..self.i]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_type_and_position_of_the_servers_messages() {
        let update = br#"{"type":"update","topic":"queue","position":17,"event":"case_claimed","data":{"id":"x","position":17}}"#;
        assert_eq!(
            head(update),
            Head {
                kind: Kind::Update,
                position: Some(17),
                code: None
            }
        );
        let snapshot =
            br#"{"type":"snapshot","topic":"queue","position":200031,"data":{"cases":[{"#;
        assert_eq!(head(snapshot).kind, Kind::Snapshot);
        assert_eq!(head(snapshot).position, Some(200031));
        let error = br#"{"type":"error","code":"forbidden_topic","message":"no"}"#;
        assert_eq!(head(error).kind, Kind::Error);
        assert_eq!(head(error).code, Some(&b"forbidden_topic"[..]));
        assert_eq!(
            head(br#"{"type":"welcome","session_id":"s"}"#).kind,
            Kind::Welcome
        );
    }

    #[test]
    fn finds_the_type_of_messages_whose_keys_are_sorted() {
        // `welcome`, `subscribed` and `error` are serde_json maps: keys in alphabetical order.
        let welcome = br#"{"heartbeat_interval_ms":30000,"position":1234,"session_id":"01a2353f-1a34-742d-8ff3-d438fd07350a","token_expires_at":"2026-12-02T05:49:17Z","type":"welcome","user":{"id":"895a24d2-2392-5779-9e50-812c5c48652b","roles":["reviewer"],"username":"reviewer"}}"#;
        assert!(welcome.len() < crate::frame::PREFIX);
        assert_eq!(head(welcome).kind, Kind::Welcome);
        assert_eq!(head(welcome).position, Some(1234));
        let error =
            br#"{"code":"forbidden_topic","id":1,"message":"auditors only","type":"error"}"#;
        assert_eq!(head(error).kind, Kind::Error);
        assert_eq!(head(error).code, Some(&b"forbidden_topic"[..]));
    }

    #[test]
    fn a_nested_position_is_not_the_messages() {
        // Key order is not relied on: `data` (with a case's own position) may come first.
        let reordered =
            br#"{"data":{"position":3,"list":[{"position":4},"}"]},"type":"update","position":9}"#;
        assert_eq!(head(reordered).position, Some(9));
        assert_eq!(head(reordered).kind, Kind::Update);
        // Cut off inside `data`: the top-level position is beyond the prefix, so not found.
        assert_eq!(head(&reordered[..30]).position, None);
    }

    #[test]
    fn strings_with_braces_quotes_and_escapes_are_skipped_whole() {
        let tricky =
            br#"{ "note" : "a \"quoted\" {brace}, and \\" , "type" : "update" , "position" : 42 }"#;
        assert_eq!(head(tricky).kind, Kind::Update);
        assert_eq!(head(tricky).position, Some(42));
        let keys: Vec<&[u8]> = Fields::new(tricky).map(|(k, _)| k).collect();
        assert_eq!(keys, [&b"note"[..], b"type", b"position"]);
    }

    #[test]
    fn cut_off_or_odd_values_are_not_read_as_positions() {
        // The prefix ends inside the number: 12 of 123 must not be reported.
        assert_eq!(head(br#"{"type":"update","position":12"#).position, None);
        assert_eq!(
            head(br#"{"type":"update","position":-1,"x":1}"#).position,
            None
        );
        assert_eq!(head(br#"{"type":"update","position":1.5}"#).position, None);
        assert_eq!(head(br#"{"type":"update","position":"7"}"#).position, None);
        assert_eq!(
            head(br#"{"type":"update","position":99999999999999999999}"#).position,
            None
        );
        assert_eq!(head(b"[1,2]").kind, Kind::Other);
        assert_eq!(head(b"").kind, Kind::Other);
        assert_eq!(head(br#"{"type":"upd\u0061te"}"#).kind, Kind::Other);
    }
}
