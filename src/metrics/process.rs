//! The process's own figures, read from `/proc` when Prometheus scrapes: resident memory, CPU
//! time, open file descriptors and their limit, start time. The metric names are the ones every
//! Prometheus client library uses (`process_resident_memory_bytes`, …), so existing dashboards
//! and alerts work unchanged. On a system without `/proc` every figure is absent.

use std::path::Path;

/// Linux reports CPU times in `USER_HZ` ticks, which is 100 per second on every architecture
/// this server is built for (it is part of the kernel's ABI, whatever the kernel's own `HZ`).
const TICKS_PER_SECOND: f64 = 100.0;

/// One reading of the process's figures.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcessStats {
    /// User and system CPU time of every thread, in seconds.
    pub cpu_seconds: f64,
    /// Resident set size, in bytes.
    pub resident_bytes: u64,
    /// File descriptors open now.
    pub open_fds: u64,
    /// The soft limit on open file descriptors (`ulimit -n`).
    pub max_fds: u64,
    /// When the process started, in seconds since the Unix epoch.
    pub start_time_seconds: f64,
}

/// Reads the figures of this process; `None` where `/proc` is not there.
pub fn read() -> Option<ProcessStats> {
    let proc = Path::new("/proc");
    let stat = std::fs::read_to_string(proc.join("self/stat")).ok()?;
    let status = std::fs::read_to_string(proc.join("self/status")).ok()?;
    let limits = std::fs::read_to_string(proc.join("self/limits")).ok()?;
    let system = std::fs::read_to_string(proc.join("stat")).ok()?;
    let open_fds = std::fs::read_dir(proc.join("self/fd")).ok()?.count() as u64;
    let (cpu_ticks, start_ticks) = parse_stat(&stat)?;
    Some(ProcessStats {
        cpu_seconds: cpu_ticks as f64 / TICKS_PER_SECOND,
        resident_bytes: parse_resident_kib(&status)? * 1024,
        // Counting the directory opens one descriptor itself.
        open_fds: open_fds.saturating_sub(1),
        max_fds: parse_max_open_files(&limits)?,
        start_time_seconds: parse_boot_time(&system)? as f64
            + start_ticks as f64 / TICKS_PER_SECOND,
    })
}

/// `utime + stime` and `starttime` of `/proc/<pid>/stat`, in ticks. The command name (field 2)
/// may hold spaces and parentheses, so the fields are counted from the last `)`.
fn parse_stat(stat: &str) -> Option<(u64, u64)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After the name: state is field 3; utime 14, stime 15, starttime 22.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some((field(14)? + field(15)?, field(22)?))
}

/// `VmRSS:  1234 kB` of `/proc/<pid>/status`.
fn parse_resident_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The soft limit of `Max open files` in `/proc/<pid>/limits`.
fn parse_max_open_files(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line["Max open files".len()..].split_whitespace().next()?;
    match soft {
        "unlimited" => Some(u64::MAX),
        n => n.parse().ok(),
    }
}

/// `btime` of `/proc/stat`: when the system booted, in seconds since the Unix epoch.
fn parse_boot_time(system: &str) -> Option<u64> {
    system
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_proc_files() {
        let stat = "4242 (tokio (runtime) x) S 1 4242 4242 0 -1 4194560 2000 0 0 0 \
                    250 75 0 0 20 0 9 0 123456 1000000 2500 18446744073709551615";
        assert_eq!(parse_stat(stat), Some((325, 123456)));
        let status = "Name:\tadjudicator\nVmPeak:\t  9000 kB\nVmRSS:\t    5120 kB\nThreads:\t9\n";
        assert_eq!(parse_resident_kib(status), Some(5120));
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max cpu time              unlimited            unlimited            seconds\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(parse_max_open_files(limits), Some(1024));
        assert_eq!(
            parse_boot_time("cpu  1 2 3\nbtime 1700000000\n"),
            Some(1_700_000_000)
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_this_process() {
        let stats = read().expect("/proc on Linux");
        assert!(stats.resident_bytes > 1024 * 1024, "{stats:?}");
        assert!(stats.open_fds >= 3, "{stats:?}");
        assert!(stats.max_fds >= stats.open_fds, "{stats:?}");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(
            stats.start_time_seconds <= now + 1.0 && stats.start_time_seconds > now - 86_400.0,
            "{stats:?}"
        );
        let busy = std::time::Instant::now();
        let mut x = 0u64;
        while busy.elapsed() < std::time::Duration::from_millis(50) {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        let later = read().expect("read again");
        assert!(later.cpu_seconds >= stats.cpu_seconds, "{x}");
    }
}
