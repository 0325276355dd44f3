//! `cdrhub user ...` and `cdrhub token ...`: accounts from the command line.
//! They open only the accounts of the data directory, so they work while a
//! server runs on it.

use std::io::BufRead;
use std::path::Path;

use anyhow::Context;
use cdrhub_model::Role;
use cdrhub_server::auth;
use cdrhub_store::postgres::PgAccounts;
use cdrhub_store::{Accounts, AuditEntry, SqliteAccounts};
use clap::Subcommand;

#[derive(Subcommand)]
pub enum UserCommand {
    /// Add a console user. Its password is generated and printed once,
    /// unless --password-stdin gives one.
    Add {
        name: String,
        /// admin, supervisor or viewer.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create an API token and print it once (send it as
    /// `Authorization: Bearer TOKEN`).
    Create {
        name: String,
        /// admin, supervisor or viewer.
        #[arg(long, value_parser = parse_role)]
        role: Role,
    },
    /// Revoke an API token: requests that carry it are refused from now on.
    Revoke { name: String },
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
}

/// The accounts of the data directory, or of the PostgreSQL store at `url`.
fn open(dir: &Path, url: Option<&str>) -> anyhow::Result<Box<dyn Accounts>> {
    Ok(match url {
        Some(url) => Box::new(PgAccounts::open(url).context("cannot open the accounts")?),
        None => Box::new(
            SqliteAccounts::open(dir)
                .with_context(|| format!("cannot open the accounts in {}", dir.display()))?,
        ),
    })
}

fn audit(accounts: &dyn Accounts, operation: &str, target: &str) -> anyhow::Result<()> {
    accounts.audit(&AuditEntry {
        actor: "cli".into(),
        role: None,
        client_ip: None,
        operation: operation.into(),
        target: Some(target.into()),
    })?;
    Ok(())
}

pub fn user(dir: &Path, url: Option<&str>, command: &UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Add {
            name,
            role,
            password_stdin,
        } => {
            let accounts = open(dir, url)?;
            let (password, generated) = if *password_stdin {
                let mut line = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .context("cannot read the password from standard input")?;
                let password = line.trim_end_matches(['\r', '\n']).to_owned();
                anyhow::ensure!(
                    password.chars().count() >= 8,
                    "the password must have at least 8 characters"
                );
                (password, false)
            } else {
                (auth::new_secret(), true)
            };
            let hash = auth::hash_password(&password).map_err(anyhow::Error::msg)?;
            accounts.add_user(name, *role, &hash)?;
            audit(&*accounts, "user add", name)?;
            if generated {
                println!("user {name} ({role}) added; password (shown once): {password}");
            } else {
                println!("user {name} ({role}) added");
            }
            Ok(())
        }
    }
}

pub fn token(dir: &Path, url: Option<&str>, command: &TokenCommand) -> anyhow::Result<()> {
    let accounts = open(dir, url)?;
    match command {
        TokenCommand::Create { name, role } => {
            let token = auth::new_secret();
            accounts.add_token(name, *role, &auth::token_hash(&token))?;
            audit(&*accounts, "token create", name)?;
            // The token alone on stdout, so scripts can capture it.
            println!("{token}");
            eprintln!("token {name} ({role}) created; it is shown only now");
            Ok(())
        }
        TokenCommand::Revoke { name } => {
            anyhow::ensure!(
                accounts.revoke_token(name)?,
                "there is no token named {name:?}"
            );
            audit(&*accounts, "token revoke", name)?;
            eprintln!("token {name} revoked");
            Ok(())
        }
    }
}
