//! `gantry user|team|key ...`: users, teams and API keys in the database of the data
//! directory. They work while `gantry serve` runs: the gateway notices the change within about
//! a second (it polls the database's data version) — a revoked key is refused from then on.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use gantry_auth::keys::{SecretOrigin, display_id, id_of};
use gantry_auth::{Authenticator, KeyAuthenticator, ServerSecret};
use gantry_store::{KeyPlanes, NewKey, Store, format_ms, now_ms};
use serde_json::Value;

/// Where the database is.
#[derive(clap::Args, Clone)]
pub(crate) struct At {
    /// Config file (its `data_dir` locates the database); not read when --data-dir is given.
    #[arg(long, short, default_value = "gantry.toml")]
    config: PathBuf,
    /// Data directory, overriding the config's `data_dir`.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

impl At {
    fn dir(&self) -> anyhow::Result<PathBuf> {
        match &self.data_dir {
            Some(d) => Ok(d.clone()),
            None => Ok(gantry_config::load(&self.config)?.data_dir),
        }
    }

    fn open(&self) -> anyhow::Result<(Store, PathBuf)> {
        let dir = self.dir()?;
        Ok((Store::open_in(&dir)?, dir))
    }
}

/// `gantry user ...`.
#[derive(clap::Subcommand)]
pub(crate) enum UserCommand {
    /// Add a user.
    Add {
        /// Unique name: letters, digits, '.', '_', '-', '@'.
        name: String,
        /// A human name.
        #[arg(long)]
        display_name: Option<String>,
        #[command(flatten)]
        at: At,
    },
    /// List users with their teams.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        at: At,
    },
    /// Remove a user, its memberships and its keys.
    Remove {
        /// User name.
        name: String,
        #[command(flatten)]
        at: At,
    },
    /// Disable a user: its keys are refused until it is enabled again.
    Disable {
        /// User name.
        name: String,
        #[command(flatten)]
        at: At,
    },
    /// Enable a disabled user.
    Enable {
        /// User name.
        name: String,
        #[command(flatten)]
        at: At,
    },
}

/// `gantry team ...`.
#[derive(clap::Subcommand)]
pub(crate) enum TeamCommand {
    /// Add a team.
    Add {
        /// Unique name: letters, digits, '.', '_', '-'.
        name: String,
        #[command(flatten)]
        at: At,
    },
    /// List teams with their members.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        at: At,
    },
    /// Remove a team and its memberships.
    Remove {
        /// Team name.
        name: String,
        #[command(flatten)]
        at: At,
    },
    /// Make a user a member of a team.
    AddMember {
        /// Team name.
        team: String,
        /// User name.
        user: String,
        #[command(flatten)]
        at: At,
    },
    /// Remove a user from a team.
    RemoveMember {
        /// Team name.
        team: String,
        /// User name.
        user: String,
        #[command(flatten)]
        at: At,
    },
}

/// `gantry key ...`.
#[derive(clap::Subcommand)]
pub(crate) enum KeyCommand {
    /// Create an API key and print it once (only its hash is stored).
    Create {
        /// The owner.
        #[arg(long)]
        user: String,
        /// What it may be used for: data (endpoints), control (admin API) or both.
        #[arg(long, default_value = "data", value_parser = ["data", "control", "both"])]
        plane: String,
        /// When it stops working: a duration (30d, 12h, 90m, 2w) or a UTC date (2027-01-01).
        #[arg(long)]
        expires: Option<String>,
        /// A note, e.g. where the key is used.
        #[arg(long)]
        label: Option<String>,
        /// Print JSON (with the key).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        at: At,
    },
    /// List keys (never their secrets).
    List {
        /// Only this user's keys.
        #[arg(long)]
        user: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        at: At,
    },
    /// Revoke a key: it is refused from now on (by a running gateway within seconds).
    Revoke {
        /// The key's id (as listed, with or without gantry_).
        id: String,
        #[command(flatten)]
        at: At,
    },
}

fn print(out: &str) -> anyhow::Result<()> {
    std::io::stdout().write_all(out.as_bytes())?;
    Ok(())
}

fn json_out(v: &Value) -> anyhow::Result<()> {
    print(&(serde_json::to_string_pretty(v)? + "\n"))
}

/// Runs a user command (blocking; called off the runtime).
pub(crate) fn user(cmd: UserCommand) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Add {
            name,
            display_name,
            at,
        } => {
            let (mut s, _) = at.open()?;
            s.add_user(&name, display_name.as_deref(), now_ms())?;
            eprintln!("added user {name}");
        }
        UserCommand::List { json, at } => {
            let (s, _) = at.open()?;
            let users = s.users()?;
            if json {
                let v: Vec<Value> = users.iter().map(gantry_admin::user_json).collect();
                return json_out(&Value::from(v));
            }
            let mut out = String::new();
            for u in &users {
                let _ = writeln!(
                    out,
                    "{}{}{}  teams: [{}]  added {}",
                    u.name,
                    u.display_name
                        .as_deref()
                        .map(|d| format!(" ({d})"))
                        .unwrap_or_default(),
                    if u.disabled { " [disabled]" } else { "" },
                    u.teams.join(", "),
                    format_ms(u.created_at)
                );
            }
            print(&out)?;
        }
        UserCommand::Remove { name, at } => {
            let (mut s, _) = at.open()?;
            s.remove_user(&name)?;
            eprintln!("removed user {name} with its memberships and keys");
        }
        UserCommand::Disable { name, at } => {
            let (mut s, _) = at.open()?;
            s.update_user(&name, None, Some(true))?;
            eprintln!("disabled user {name}: its keys are refused");
        }
        UserCommand::Enable { name, at } => {
            let (mut s, _) = at.open()?;
            s.update_user(&name, None, Some(false))?;
            eprintln!("enabled user {name}");
        }
    }
    Ok(())
}

/// Runs a team command (blocking; called off the runtime).
pub(crate) fn team(cmd: TeamCommand) -> anyhow::Result<()> {
    match cmd {
        TeamCommand::Add { name, at } => {
            let (mut s, _) = at.open()?;
            s.add_team(&name, now_ms())?;
            eprintln!("added team {name}");
        }
        TeamCommand::List { json, at } => {
            let (s, _) = at.open()?;
            let teams = s.teams()?;
            if json {
                let v: Vec<Value> = teams.iter().map(gantry_admin::team_json).collect();
                return json_out(&Value::from(v));
            }
            let mut out = String::new();
            for t in &teams {
                let _ = writeln!(out, "{}  members: [{}]", t.name, t.members.join(", "));
            }
            print(&out)?;
        }
        TeamCommand::Remove { name, at } => {
            let (mut s, _) = at.open()?;
            s.remove_team(&name)?;
            eprintln!("removed team {name}");
        }
        TeamCommand::AddMember { team, user, at } => {
            let (mut s, _) = at.open()?;
            if s.add_member(&team, &user, now_ms())? {
                eprintln!("added {user} to team {team}");
            } else {
                eprintln!("{user} is already a member of team {team}");
            }
        }
        TeamCommand::RemoveMember { team, user, at } => {
            let (mut s, _) = at.open()?;
            s.remove_member(&team, &user)?;
            eprintln!("removed {user} from team {team}");
        }
    }
    Ok(())
}

/// The server secret of `dir`, saying where a new one was created.
fn secret(dir: &Path) -> anyhow::Result<ServerSecret> {
    let (s, origin) = ServerSecret::load(dir).map_err(anyhow::Error::msg)?;
    if let SecretOrigin::Created(p) = origin {
        eprintln!(
            "created the server secret {} (keep it with the database: keys cannot be checked without it)",
            p.display()
        );
    }
    Ok(s)
}

/// Runs a key command (blocking; called off the runtime).
pub(crate) fn key(cmd: KeyCommand) -> anyhow::Result<()> {
    match cmd {
        KeyCommand::Create {
            user,
            plane,
            expires,
            label,
            json,
            at,
        } => {
            let (mut s, dir) = at.open()?;
            let now = now_ms();
            let planes = KeyPlanes::parse(&plane)?;
            let expires_at = expires
                .as_deref()
                .map(|e| gantry_store::identity::parse_expires(e, now))
                .transpose()?;
            let secret = secret(&dir)?;
            let g = secret.generate().context("cannot generate a key")?;
            let rec = s.add_key(
                &NewKey {
                    id: g.id.clone(),
                    user,
                    hash: g.hash.clone(),
                    planes,
                    label,
                    expires_at,
                },
                now,
            )?;
            if json {
                let mut v = gantry_admin::key_json(&rec, now);
                v["key"] = Value::from(g.key);
                return json_out(&v);
            }
            eprintln!(
                "created API key {} for {} (plane: {}, expires: {}{})",
                display_id(&rec.id),
                rec.user,
                rec.planes.as_str(),
                rec.expires_at.map_or("never".into(), format_ms),
                rec.label
                    .as_deref()
                    .map(|l| format!(", label: {l}"))
                    .unwrap_or_default()
            );
            print(&format!("{}\n", g.key))?;
            eprintln!(
                "store this key now: it will not be shown again (Gantry keeps only its hash)"
            );
        }
        KeyCommand::List { user, json, at } => {
            let (s, _) = at.open()?;
            let keys = s.keys(user.as_deref())?;
            let now = now_ms();
            if json {
                let v: Vec<Value> = keys
                    .iter()
                    .map(|k| gantry_admin::key_json(k, now))
                    .collect();
                return json_out(&Value::from(v));
            }
            let mut out = String::new();
            for k in &keys {
                let _ = writeln!(
                    out,
                    "{}  {:<8} {:<7} {:<7} created {}  expires {}  last used {}{}",
                    display_id(&k.id),
                    k.user,
                    k.planes.as_str(),
                    k.state(now),
                    format_ms(k.created_at),
                    k.expires_at.map_or("never".into(), format_ms),
                    k.last_used_at.map_or("never".into(), format_ms),
                    k.label
                        .as_deref()
                        .map(|l| format!("  ({l})"))
                        .unwrap_or_default()
                );
            }
            print(&out)?;
        }
        KeyCommand::Revoke { id, at } => {
            let (mut s, _) = at.open()?;
            let rec = s.revoke_key(id_of(&id), now_ms())?;
            eprintln!(
                "revoked API key {} of {} (a running gateway refuses it within seconds)",
                display_id(&rec.id),
                rec.user
            );
        }
    }
    Ok(())
}

/// How often `gantry serve` checks the database for key changes.
const KEY_POLL: Duration = gantry_admin::sync::POLL_INTERVAL;

/// The gateway's identity side: the key table (kept in step with the database by its
/// thread) and the admin API.
pub(crate) struct Identity {
    pub(crate) sync: Arc<gantry_admin::KeySync>,
    pub(crate) authenticators: Vec<Arc<dyn Authenticator>>,
    pub(crate) admin: Arc<gantry_admin::Admin>,
    pub(crate) keys: usize,
    /// Seals `requestState`s, derived from the server secret: they survive a restart and
    /// open on every replica that shares the secret.
    pub(crate) sealing_key: [u8; 32],
}

impl Identity {
    /// Loads the server secret and the keys of the database in `dir` (blocking). Bearer
    /// tokens are tried against the keys first, then against `others` (OpenID providers).
    pub(crate) fn open(
        dir: &Path,
        others: Vec<Arc<dyn Authenticator>>,
    ) -> anyhow::Result<Identity> {
        let (secret, origin) = ServerSecret::load(dir).map_err(anyhow::Error::msg)?;
        match origin {
            SecretOrigin::Env => tracing::info!("server secret from GANTRY_SECRET"),
            SecretOrigin::File(p) => tracing::debug!(file = %p.display(), "server secret"),
            SecretOrigin::Created(p) => {
                tracing::info!(file = %p.display(), "created the server secret")
            }
        }
        let keys = Arc::new(KeyAuthenticator::new(secret));
        let sync = Arc::new(gantry_admin::KeySync::start(
            Store::open_in(dir)?,
            keys.clone(),
            KEY_POLL,
        )?);
        let mut authenticators: Vec<Arc<dyn Authenticator>> = vec![keys.clone()];
        authenticators.extend(others);
        let admin = Arc::new(gantry_admin::Admin::new(
            Store::open_in(dir)?,
            keys.clone(),
            sync.clone(),
            authenticators.clone(),
        ));
        Ok(Identity {
            sync,
            authenticators,
            admin,
            keys: keys.len(),
            sealing_key: keys.secret().derive("request-state"),
        })
    }
}
