//! `adjudicator user add` and `adjudicator user list`: user administration without a running
//! server (the store's write lock refuses `add` while a server holds it; use the API then).
//!
//! The password is read from standard input (one line), never from the command line, where it
//! would be visible to every user of the machine and kept in shell histories.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::Context;
use events::domain::user::{self, UserAction, UserCommand};
use events::domain::{Actor, Role};
use events::Metadata;
use projections::Projections;

use super::args::{UserAddArgs, UserListArgs};
use super::open_store;
use crate::auth::{check_password_policy, hash_password};
use crate::commands;

pub async fn add(args: UserAddArgs) -> anyhow::Result<()> {
    if args.roles.is_empty() {
        anyhow::bail!("--role is required (reviewer, senior_reviewer, auditor, admin, classifier)");
    }
    let password = read_password()?;
    check_password_policy(&password).map_err(|e| anyhow::anyhow!("{e}"))?;
    let store = open_store(&args.store, true).await?;
    let password_hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .context("hashing task")??;
    let user_id = user::user_id_for(&args.username);
    let outcome = commands::run_user(store.as_ref(), user_id, Metadata::for_request(None), || {
        UserCommand {
            actor: Actor::system(),
            action: UserAction::Register {
                username: args.username.clone(),
                display_name: args.display_name.clone().unwrap_or_default(),
                password_hash: password_hash.clone(),
                roles: args.roles.clone(),
            },
        }
    })
    .await
    .map_err(|e| anyhow::anyhow!("cannot add {}: {e}", args.username))?;
    if outcome.is_some() {
        println!("added {} ({user_id})", args.username);
    }
    Ok(())
}

fn read_password() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("password (input is shown; pipe it in to hide it): ");
        std::io::stderr().flush().ok();
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\n', '\r']).to_owned();
    if password.is_empty() {
        anyhow::bail!("no password on standard input");
    }
    Ok(password)
}

pub async fn list(args: UserListArgs) -> anyhow::Result<()> {
    let store = open_store(&args.store, false).await?;
    let models = super::replay::fold_from(store, Projections::new()).await?;
    let mut users: Vec<_> = models.users().iter().map(|u| u.view()).collect();
    users.sort_by(|a, b| a.username.cmp(&b.username));
    println!("{:<24} {:<36} {:<9} roles", "username", "id", "status");
    for u in users {
        let roles: Vec<&str> = u.roles.iter().map(|r: &Role| r.as_str()).collect();
        let status = if u.disabled { "disabled" } else { "active" };
        println!(
            "{:<24} {:<36} {:<9} {}",
            u.username,
            u.id,
            status,
            roles.join(",")
        );
    }
    Ok(())
}
