//! The WebSocket client-message parser on arbitrary text: it answers a message or a
//! `bad_message`, never panics, and every topic a parsed message names goes through the topic
//! parser too (as the session does).

#![no_main]

use adjudicator::ws::protocol::{parse, ClientMessage};
use libfuzzer_sys::fuzz_target;
use projections::Topic;

fuzz_target!(|data: &[u8]| {
    // Text frames are UTF-8 by the time the session sees them.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse(text) {
        Ok(ClientMessage::Subscribe { topics, .. } | ClientMessage::Unsubscribe { topics, .. }) => {
            for topic in &topics {
                if let Ok(parsed) = Topic::parse(topic) {
                    // What the server writes back must read as the same topic.
                    assert_eq!(Topic::parse(&parsed.as_string()).ok(), Some(parsed));
                }
            }
        }
        Ok(_) => {}
        Err(bad) => assert!(!bad.message.is_empty()),
    }
});
