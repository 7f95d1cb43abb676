//! The duration parser of the settings (`30s`, `1h30m`): never panics, and a duration it reads
//! is written back by `format_duration` as text that reads as the same duration.

#![no_main]

use adjudicator::config::duration::{format_duration, parse_duration};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(d) = parse_duration(text) {
        let shown = format_duration(d);
        assert_eq!(parse_duration(&shown), Ok(d), "{text:?} shown as {shown:?}");
    }
});
