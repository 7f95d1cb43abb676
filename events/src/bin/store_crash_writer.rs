//! Test tool for the crash-safety test: appends to an SQLite store in a loop from several
//! concurrent writers and prints one line per acknowledged append, flushed before the next one
//! starts, until it is killed:
//!
//! ```text
//! ack <stream> <stream version> <first position> <event id> [<event id> …]
//! ```
//!
//! Usage: `store-crash-writer <store file> [writers]`.

use std::io::Write;

use events::contract::sample_event;
use events::store::sqlite::SqliteStore;
use events::{EventStore, ExpectedVersion};

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: store-crash-writer <store file> [writers]");
        std::process::exit(2);
    };
    let writers: u64 = args.next().and_then(|w| w.parse().ok()).unwrap_or(8);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start a runtime: {e}");
            std::process::exit(1);
        }
    };
    runtime.block_on(async move {
        let store = match SqliteStore::open(&path) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        };
        let mut tasks = Vec::new();
        for w in 0..writers {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for n in 0u64.. {
                    let batch: Vec<_> = (0..1 + n % 3).map(|i| sample_event(n * 10 + i)).collect();
                    let ids: Vec<String> = batch.iter().map(|e| e.id.to_string()).collect();
                    let stream = format!("crash-{w}-{}", n % 7);
                    match store.append(&stream, ExpectedVersion::Any, batch).await {
                        Ok(r) => {
                            let line = format!(
                                "ack {stream} {} {} {}\n",
                                r.stream_version,
                                r.positions[0],
                                ids.join(" ")
                            );
                            let mut out = std::io::stdout().lock();
                            if out
                                .write_all(line.as_bytes())
                                .and_then(|_| out.flush())
                                .is_err()
                            {
                                std::process::exit(0);
                            }
                        }
                        Err(e) => {
                            eprintln!("append failed: {e}");
                            std::process::exit(1);
                        }
                    }
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
}
