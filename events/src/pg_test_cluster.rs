//! A private PostgreSQL for tests (feature `testing`), shared by every test of one test binary.
//!
//! [`fresh_database`] gives each test a new, empty database. The first call starts a cluster:
//! `initdb` in a new directory under the temp dir (as the `postgres` user when the tests run as
//! root, since `initdb` refuses root), then `postgres` listening only on a Unix socket in that
//! directory. Both run under a small shell supervisor that reads its standard input, a pipe
//! held by the test process: when the test process ends, however it ends (success, a panic, a
//! signal), the pipe closes, and the supervisor stops the server (`SIGQUIT`, an immediate
//! shutdown) and removes the directory. Nothing is left running.
//!
//! `ADJUDICATOR_TEST_POSTGRES_URL` (a `postgres://` URL with a user that may create databases)
//! points the tests at an existing server instead; an unreachable one fails the test.
//! Without that variable and without PostgreSQL's server binaries (`/usr/lib/postgresql/*/bin`
//! or `initdb` on the `PATH`), the test prints a loud `SKIPPED` line and passes, unless `CI` is
//! set, where it fails.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{mpsc, Mutex, OnceLock};
use std::time::Duration;

use tokio_postgres::NoTls;
use uuid::Uuid;

/// The variable that names an existing server.
pub const URL_VARIABLE: &str = "ADJUDICATOR_TEST_POSTGRES_URL";
/// How long a new cluster may take to accept connections.
const START_DEADLINE: Duration = Duration::from_secs(90);

/// A database that exists for one test. On a configured server it is dropped (with its
/// connections) when this is dropped; on the private cluster it is left for the cluster's
/// removal, since `DROP DATABASE` forces a checkpoint that costs a second per test.
pub struct TestDatabase {
    /// The database's URL, for `--store` or [`crate::store::postgres::PostgresStore::connect`].
    pub url: String,
    name: String,
    admin_url: String,
    drop_at_end: bool,
}

impl TestDatabase {
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if !self.drop_at_end {
            return;
        }
        let admin_url = self.admin_url.clone();
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // Its own thread and runtime: this may run inside (or after) any test's runtime.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async move {
                let admin = connect(&admin_url).await?;
                admin.batch_execute(&sql).await.map_err(|e| e.to_string())
            })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("test database {} not dropped: {e}", self.name);
        }
    }
}

/// A new, empty database on the test server; `None` (after a loud `SKIPPED` line naming
/// `test`) when there is no PostgreSQL to run and `CI` is not set.
pub async fn fresh_database(test: &str) -> Option<TestDatabase> {
    let server = tokio::task::spawn_blocking(admin_url)
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    let Some((admin_url, configured)) = server else {
        eprintln!(
            "SKIPPED {test}: no PostgreSQL server binaries (install Debian's `postgresql`, or \
             set {URL_VARIABLE}); this test did NOT run"
        );
        return None;
    };
    let name = format!("adjudicator_test_{}", Uuid::now_v7().simple());
    let admin = connect(&admin_url)
        .await
        .unwrap_or_else(|e| panic!("the test PostgreSQL server is unreachable: {e}"));
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap_or_else(|e| panic!("cannot create a test database: {e}"));
    Some(TestDatabase {
        url: with_database(&admin_url, &name),
        name,
        admin_url,
        drop_at_end: configured,
    })
}

/// A client on `url` whose connection runs on the current runtime.
async fn connect(url: &str) -> Result<tokio_postgres::Client, String> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// The URL of a database on the server to create test databases from, and whether it is a
/// configured server (rather than the private cluster, started on first use). `None` when
/// neither can be had.
fn admin_url() -> Option<(String, bool)> {
    if let Ok(url) = std::env::var(URL_VARIABLE) {
        return Some((url, true));
    }
    let Some(bin) = server_binaries() else {
        if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
            panic!(
                "CI is set and PostgreSQL's server binaries are missing (looked in \
                 /usr/lib/postgresql/*/bin and on the PATH); run .ci/install-test-deps"
            );
        }
        return None;
    };
    static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
    match CLUSTER.get_or_init(|| Cluster::start(&bin)) {
        Ok(cluster) => Some((cluster.admin_url.clone(), false)),
        Err(e) => panic!("the private PostgreSQL did not start: {e}"),
    }
}

/// The directory of `initdb` and `postgres`: the newest under `/usr/lib/postgresql`, or the
/// `PATH`'s.
fn server_binaries() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .find(|dir| dir.join("initdb").is_file() && dir.join("postgres").is_file())
}

/// The running private cluster. Its supervisor's standard input stays open for as long as the
/// process lives; the supervisor cleans up when it closes.
struct Cluster {
    admin_url: String,
    _supervisor_stdin: Mutex<ChildStdin>,
}

/// Runs as the cluster's owner: makes the cluster, starts the server, waits for the test
/// process to go away (its standard input closes), then stops the server and removes it all.
const SUPERVISOR: &str = r#"
dir=$1; bin=$2
if ! "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C --no-sync \
        > "$dir/initdb.log" 2>&1; then
    cat "$dir/initdb.log" >&2
    echo "initdb failed" >&2
    rm -rf "$dir"
    exit 1
fi
"$bin/postgres" -D "$dir/data" -k "$dir" -c listen_addresses= -c max_connections=400 \
    -c shared_buffers=128MB -c log_min_messages=warning -c log_min_error_statement=panic \
    < /dev/null &
pid=$!
cat > /dev/null
kill -QUIT "$pid" 2> /dev/null
wait "$pid"
rm -rf "$dir"
"#;

/// The line the server logs once it accepts connections.
const READY: &str = "database system is ready to accept connections";

impl Cluster {
    fn start(bin: &Path) -> Result<Cluster, String> {
        let dir = std::env::temp_dir().join(format!(
            "adjudicator-pg-{}-{}",
            std::process::id(),
            &Uuid::now_v7().simple().to_string()[24..]
        ));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(SUPERVISOR)
            .arg("adjudicator-test-postgres")
            .arg(&dir)
            .arg(bin)
            .current_dir(&dir)
            .env("LC_ALL", "C")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if running_as_root() {
            // initdb refuses root: the cluster belongs to the `postgres` user.
            let (uid, gid) = postgres_user()?;
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                .map_err(|e| format!("cannot give {} to postgres: {e}", dir.display()))?;
            std::os::unix::process::CommandExt::uid(&mut command, uid);
            std::os::unix::process::CommandExt::gid(&mut command, gid);
        }
        let mut child = command.spawn().map_err(|e| format!("cannot run sh: {e}"))?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let (lines, read) = mpsc::channel();
        std::thread::spawn(move || {
            // Forward lines until the server is ready, then keep draining the pipe (a full
            // pipe would stall the server) without forwarding.
            let mut forwarding = true;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if forwarding && lines.send(line).is_err() {
                    forwarding = false;
                }
            }
        });
        let mut seen = Vec::new();
        let deadline = std::time::Instant::now() + START_DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match read.recv_timeout(left) {
                Ok(line) if line.contains(READY) => break,
                Ok(line) => seen.push(line),
                Err(_) => {
                    return Err(format!(
                        "no \"{READY}\" within {}s; it said:\n{}",
                        START_DEADLINE.as_secs(),
                        seen.join("\n")
                    ))
                }
            }
        }
        drop(read);
        Ok(Cluster {
            admin_url: format!("postgres://postgres@{}/postgres", percent_encode(&dir)),
            _supervisor_stdin: Mutex::new(stdin),
        })
    }
}

fn running_as_root() -> bool {
    // /proc/self belongs to the process's effective user.
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// The uid and gid of `postgres`, from /etc/passwd.
fn postgres_user() -> Result<(u32, u32), String> {
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(|e| format!("/etc/passwd: {e}"))?;
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.len() > 3 && fields[0] == "postgres")
                .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
                .flatten()
        })
        .ok_or_else(|| {
            "running as root and there is no `postgres` user for initdb (install Debian's \
             postgresql, which creates it)"
                .to_owned()
        })
}

/// A Unix socket directory as the host part of a URL.
fn percent_encode(dir: &Path) -> String {
    dir.to_string_lossy()
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `url` with its database (the path) replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let query = tail.split_once('?').map(|(_, q)| q);
    match query {
        Some(q) => format!("{scheme}://{authority}/{name}?{q}"),
        None => format!("{scheme}://{authority}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_of_a_url_is_replaced() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/postgres?sslmode=disable", "t1"),
            "postgres://u:p@h:5432/t1?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "t1"), "postgres://h/t1");
        assert_eq!(
            with_database("postgresql://%2Ftmp%2Fx/db", "t2"),
            "postgresql://%2Ftmp%2Fx/t2"
        );
    }
}
