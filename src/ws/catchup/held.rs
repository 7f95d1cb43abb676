//! The live pushes a session misses while it catches up from the log, held by the registry until
//! the hand-over: bounded in messages and bytes (a session whose catch-up falls that far behind is
//! closed 1013 `slow_consumer`, and resumes with `since` again).

use std::collections::{HashSet, VecDeque};

use bytestring::ByteString;
use projections::Topic;

use crate::metrics::MessageType;

/// Pushes held for one catching-up session at most.
pub const MAX_HELD_MESSAGES: usize = 10_000;
/// Bytes of pushes held for one catching-up session at most.
pub const MAX_HELD_BYTES: usize = 16 * 1024 * 1024;

/// Too many pushes held: the catch-up cannot join the live stream.
#[derive(Debug, PartialEq, Eq)]
pub struct HeldOverflow;

#[derive(Debug)]
pub struct Held {
    /// The topics being caught up: their pushes up to the catch-up's end came from the log.
    resumed: HashSet<Topic>,
    entries: VecDeque<(u64, Topic, ByteString)>,
    bytes: usize,
    max_messages: usize,
    max_bytes: usize,
}

impl Held {
    pub fn new(resumed: impl IntoIterator<Item = Topic>) -> Self {
        Self::bounded(resumed, MAX_HELD_MESSAGES, MAX_HELD_BYTES)
    }

    fn bounded(resumed: impl IntoIterator<Item = Topic>, messages: usize, bytes: usize) -> Self {
        Held {
            resumed: resumed.into_iter().collect(),
            entries: VecDeque::new(),
            bytes: 0,
            max_messages: messages,
            max_bytes: bytes,
        }
    }

    /// The topics being caught up.
    pub fn resumed(&self) -> impl Iterator<Item = &Topic> {
        self.resumed.iter()
    }

    /// Holds a push for the session (any of its topics: the session's pushes stay in position
    /// order).
    pub fn hold(
        &mut self,
        position: u64,
        topic: Topic,
        text: ByteString,
    ) -> Result<(), HeldOverflow> {
        if self.entries.len() >= self.max_messages || self.bytes + text.len() > self.max_bytes {
            return Err(HeldOverflow);
        }
        self.bytes += text.len();
        self.entries.push_back((position, topic, text));
        Ok(())
    }

    /// Everything held so far, in order, without the pushes of the resumed topics at or before
    /// `upto` (the log delivered those).
    pub fn take(&mut self, upto: u64) -> VecDeque<(ByteString, MessageType)> {
        self.bytes = 0;
        std::mem::take(&mut self.entries)
            .into_iter()
            .filter(|(position, topic, _)| *position > upto || !self.resumed.contains(topic))
            .map(|(_, _, text)| (text, MessageType::Update))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(p: u64) -> ByteString {
        ByteString::from(format!("{p}"))
    }

    #[test]
    fn drops_only_what_the_log_delivered() {
        let mut held = Held::new([Topic::Audit]);
        held.hold(4, Topic::Audit, text(4)).unwrap();
        held.hold(4, Topic::Queue, text(40)).unwrap();
        held.hold(5, Topic::Audit, text(5)).unwrap();
        held.hold(6, Topic::Audit, text(6)).unwrap();
        let got: Vec<String> = held
            .take(5)
            .into_iter()
            .map(|(t, _)| t.to_string())
            .collect();
        assert_eq!(
            got,
            ["40", "6"],
            "audit 4 and 5 came from the log; queue was not resumed"
        );
        assert!(held.take(5).is_empty(), "taken once");
    }

    #[test]
    fn is_bounded_in_messages_and_bytes() {
        let mut held = Held::bounded([Topic::Audit], 2, 100);
        held.hold(1, Topic::Audit, text(1)).unwrap();
        held.hold(2, Topic::Audit, text(2)).unwrap();
        assert_eq!(held.hold(3, Topic::Audit, text(3)), Err(HeldOverflow));
        let mut held = Held::bounded([Topic::Audit], 10, 3);
        held.hold(1, Topic::Audit, ByteString::from("ab")).unwrap();
        assert_eq!(
            held.hold(2, Topic::Audit, ByteString::from("cd")),
            Err(HeldOverflow)
        );
        held.take(0);
        held.hold(3, Topic::Audit, ByteString::from("cd")).unwrap();
    }
}
