//! What `/proc` says about the server (and this process): CPU time, resident memory, open
//! descriptors, the CPUs it may run on, and the machine's load average; and raising this
//! process's open-files limit.

use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};

/// User + system CPU time of a process so far (`/proc/<pid>/stat` fields 14 and 15).
pub fn cpu_time(pid: u32) -> Result<Duration> {
    stat_cpu_time(&format!("/proc/{pid}/stat"))
}

/// The same for one thread of this process.
pub fn thread_cpu_time(tid: i32) -> Result<Duration> {
    stat_cpu_time(&format!("/proc/self/task/{tid}/stat"))
}

fn stat_cpu_time(path: &str) -> Result<Duration> {
    let stat = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    let ticks = cpu_ticks(&stat).ok_or_else(|| anyhow!("cannot read utime/stime in {path}"))?;
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let per_second = if per_second > 0 {
        per_second as u64
    } else {
        100
    };
    Ok(Duration::from_nanos(ticks * 1_000_000_000 / per_second))
}

/// utime + stime in clock ticks. The command name (field 2) may hold spaces and parentheses,
/// so the fields are counted from the last `)`.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace().skip(11); // field 3 is the first after `)`
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// How long the threads of a process have been runnable but waiting for a CPU, summed
/// (`/proc/<pid>/task/*/schedstat`, second field): on a shared machine, how much of a run the
/// process spent queued behind others.
pub fn run_delay(pid: u32) -> Result<Duration> {
    let dir = format!("/proc/{pid}/task");
    let mut total = Duration::ZERO;
    for task in std::fs::read_dir(&dir).with_context(|| format!("listing {dir}"))? {
        // A thread may end between the listing and the read.
        total += schedstat_delay(&task?.path().join("schedstat")).unwrap_or_default();
    }
    Ok(total)
}

/// The same for one thread of this process.
pub fn thread_run_delay(tid: i32) -> Option<Duration> {
    schedstat_delay(std::path::Path::new(&format!(
        "/proc/self/task/{tid}/schedstat"
    )))
}

fn schedstat_delay(path: &std::path::Path) -> Option<Duration> {
    let text = std::fs::read_to_string(path).ok()?;
    let ns = text.split_whitespace().nth(1)?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// A line of `/proc/<pid>/status` (`self` for this process), without its label.
fn status_field(pid: &str, label: &str) -> Result<String> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(label))
        .map(|v| v.trim().to_owned())
        .ok_or_else(|| anyhow!("no {label} line in {path}"))
}

/// `VmRSS` in KiB.
pub fn rss_kib(pid: &str) -> Result<u64> {
    let v = status_field(pid, "VmRSS:")?;
    v.trim_end_matches("kB")
        .trim()
        .parse()
        .with_context(|| format!("VmRSS {v:?}"))
}

/// The CPUs a process may run on, e.g. `0` or `0-1`.
pub fn cpus_allowed(pid: &str) -> String {
    status_field(pid, "Cpus_allowed_list:").unwrap_or_else(|_| "?".into())
}

/// How many descriptors a process has open.
pub fn open_fds(pid: u32) -> Result<usize> {
    let path = format!("/proc/{pid}/fd");
    Ok(std::fs::read_dir(&path)
        .with_context(|| format!("listing {path}"))?
        .count())
}

/// The 1, 5 and 15 minute load averages.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// Raises this process's soft limit on open files to the hard limit; returns (soft, hard).
pub fn raise_nofile_limit() -> (u64, u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own; setrlimit only reads it.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return (0, 0);
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim = raised;
            }
        }
    }
    (lim.rlim_cur, lim.rlim_max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_counted_after_the_command_name() {
        let stat = "4242 (a (weird) name) S 1 2 3 4 5 6 7 8 9 10 1500 250 0 0 20 0 9";
        assert_eq!(cpu_ticks(stat), Some(1750));
        assert_eq!(cpu_ticks("1 (x) S 1"), None);
    }

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        assert!(rss_kib("self").unwrap() > 0);
        assert!(open_fds(me).unwrap() >= 3);
        cpu_time(me).unwrap();
        // SAFETY: gettid has no preconditions.
        thread_cpu_time(unsafe { libc::gettid() }).unwrap();
        assert_ne!(cpus_allowed("self"), "?");
        run_delay(me).unwrap();
    }
}
