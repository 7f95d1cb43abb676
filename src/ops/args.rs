//! Flags of the operator tools (`replay`, `audit …`, `bench generate`).

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// Which store to read: the same flags and variables as `serve`.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Data directory of the embedded store.
    #[arg(
        long,
        env = "ADJUDICATOR_DATA_DIR",
        value_name = "PATH",
        default_value = "./data"
    )]
    pub data_dir: PathBuf,

    /// Event store: `sqlite`, `postgres://…` or `esdb://…`.
    #[arg(
        long,
        env = "ADJUDICATOR_STORE",
        value_name = "URL",
        default_value = "sqlite",
        hide_env_values = true
    )]
    pub store: String,
}

/// Flags of `adjudicator replay`.
#[derive(Debug, Clone, Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub store: StoreArgs,

    /// Snapshot to check the replay against [default: <data-dir>/projections.snapshot].
    #[arg(long, value_name = "PATH")]
    pub snapshot: Option<PathBuf>,

    /// The server secret that authenticates the snapshot, as `serve` uses it
    /// [default: <data-dir>/jwt-secret].
    #[arg(long, env = "ADJUDICATOR_JWT_SECRET_FILE", value_name = "PATH")]
    pub jwt_secret_file: Option<PathBuf>,
}

/// `adjudicator audit …`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: AuditCommand,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check that positions 1..head are all there, every stream's versions and hash chain, and
    /// (with --expect) the head commitments recorded earlier; exit non-zero naming the first
    /// bad position of each problem.
    Verify(VerifyArgs),
    /// Print the log's head commitment, `<position>:<commitment>`, after checking the log as
    /// `verify` does: keep it somewhere the store's operators cannot edit.
    Head(StoreArgs),
    /// Write every event after a position as NDJSON, one audit event per line.
    Export(ExportArgs),
}

/// Flags of `adjudicator audit verify`.
#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub store: StoreArgs,

    /// A head printed earlier by `audit head` (or served by `GET /api/v1/audit/head`): the log
    /// up to that position must be exactly what it was. Repeat for several.
    #[arg(long = "expect", value_name = "POSITION:COMMITMENT")]
    pub expect: Vec<events::commitment::LogHead>,
}

/// Flags of `adjudicator audit export`.
#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub store: StoreArgs,

    /// Export the events after this position (0: all of them).
    #[arg(long, value_name = "POSITION", default_value_t = 0)]
    pub after: u64,

    /// Write to this file instead of standard output.
    #[arg(long, value_name = "PATH")]
    pub output: Option<PathBuf>,
}

/// Flags of `adjudicator bench generate`.
#[derive(Debug, Clone, Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub store: StoreArgs,

    /// How many events to append (rounded up to whole case histories).
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    pub events: u64,

    /// Mark a new store as a demo store first, so that `serve --demo` takes it and adds the demo
    /// users (whom the load generator logs in as). Refused on a store that already holds data
    /// and is not a demo store.
    #[arg(long)]
    pub demo: bool,
}

/// `adjudicator user …`.
#[derive(Debug, Args)]
pub struct UserArgs {
    #[command(subcommand)]
    pub command: UserCommand,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user; the password is read from standard input.
    Add(UserAddArgs),
    /// List the users.
    List(UserListArgs),
}

/// Flags of `adjudicator user add`.
#[derive(Debug, Clone, Args)]
pub struct UserAddArgs {
    #[command(flatten)]
    pub store: StoreArgs,

    /// 3 to 64 characters of a-z, 0-9, `_`, `.`, `-`.
    #[arg(long)]
    pub username: String,

    /// A role; repeat for several (`--role reviewer --role auditor`).
    #[arg(long = "role", value_name = "ROLE", required = true)]
    pub roles: Vec<events::domain::Role>,

    /// The name shown to others.
    #[arg(long)]
    pub display_name: Option<String>,
}

/// Flags of `adjudicator user list`.
#[derive(Debug, Clone, Args)]
pub struct UserListArgs {
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `adjudicator store …`.
#[derive(Debug, Args)]
pub struct StoreCommandArgs {
    #[command(subcommand)]
    pub command: StoreCommand,
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Copy every event into an empty store (e.g. SQLite to PostgreSQL), verifying every hash
    /// chain on the way and the whole target at the end.
    Copy(CopyArgs),
}

/// Flags of `adjudicator store copy`.
#[derive(Debug, Clone, Args)]
pub struct CopyArgs {
    /// The store to copy: `sqlite:<data-dir>` (or just the data directory), or a URL such as
    /// `postgres://…`.
    #[arg(long, value_name = "STORE")]
    pub from: String,

    /// The empty store to copy into, in the same form.
    #[arg(long, value_name = "STORE")]
    pub to: String,
}
