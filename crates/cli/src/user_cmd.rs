//! `signalbox user add|update|remove|list DIR …`: the users table of a master, through the
//! store, for `UsersAuth` logins and the `/users` pages. Passwords are stored as bcrypt
//! hashes; a password is read from `--password-stdin` rather than the command line when
//! other users of the machine must not see it in the process list.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};

/// The `user` subcommands.
#[derive(Subcommand)]
pub enum UserCommand {
    /// Add a user.
    Add {
        /// Master directory.
        dir: PathBuf,
        #[command(flatten)]
        fields: Fields,
    },
    /// Change a user found by --uid or --identifier.
    Update {
        /// Master directory.
        dir: PathBuf,
        /// The user's uid.
        #[arg(long)]
        uid: Option<i64>,
        #[command(flatten)]
        fields: Fields,
    },
    /// Remove a user found by --uid or --identifier.
    Remove {
        /// Master directory.
        dir: PathBuf,
        /// The user's uid.
        #[arg(long)]
        uid: Option<i64>,
        /// The user's identifier.
        #[arg(long)]
        identifier: Option<String>,
    },
    /// List every user with its attributes (never password hashes).
    List {
        /// Master directory.
        dir: PathBuf,
    },
}

/// What `add` and `update` set.
#[derive(Args)]
pub struct Fields {
    /// Unique identifier (usually the author string, `Name <email>`).
    #[arg(long)]
    identifier: Option<String>,
    /// Web login name.
    #[arg(long)]
    username: Option<String>,
    /// Web password (visible in the process list; see --password-stdin).
    #[arg(long, conflicts_with = "password_stdin")]
    password: Option<String>,
    /// Read the web password from the first line of standard input.
    #[arg(long)]
    password_stdin: bool,
    /// An attribute as TYPE=VALUE (email=a@example.org, git=…, groups=a,b); repeatable.
    #[arg(long = "attr", value_name = "TYPE=VALUE")]
    attributes: Vec<String>,
}

/// Runs one `user` subcommand.
pub fn run(command: UserCommand) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        match command {
            UserCommand::Add { dir, fields } => add(&dir, fields).await,
            UserCommand::Update { dir, uid, fields } => update(&dir, uid, fields).await,
            UserCommand::Remove {
                dir,
                uid,
                identifier,
            } => remove(&dir, uid, identifier.as_deref()).await,
            UserCommand::List { dir } => list(&dir).await,
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

async fn open(dir: &Path) -> Result<store::Store> {
    let loaded = config::load(&dir.join("master.cfg")).map_err(|e| anyhow::anyhow!("{e}"))?;
    let url = engine::database_url(dir, loaded.config.db_url.as_deref());
    let store = store::Store::connect(&url)
        .await
        .context("cannot open the master's database")?;
    store
        .ensure_current()
        .await
        .context("the database needs `signalbox upgrade-master`")?;
    Ok(store)
}

fn password_hash(fields: &Fields) -> Result<Option<String>> {
    let password = match (&fields.password, fields.password_stdin) {
        (Some(p), _) => Some(p.clone()),
        (None, true) => {
            let mut text = String::new();
            std::io::stdin()
                .take(64 * 1024)
                .read_to_string(&mut text)
                .context("cannot read the password from standard input")?;
            Some(text.lines().next().unwrap_or("").to_string())
        }
        (None, false) => None,
    };
    match password {
        Some(p) if p.is_empty() => bail!("the password is empty"),
        Some(p) => Ok(Some(www::auth::htpasswd::hash(&p))),
        None => Ok(None),
    }
}

fn attributes(fields: &Fields) -> Result<Vec<(String, String)>> {
    fields
        .attributes
        .iter()
        .map(|a| match a.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => bail!("--attr {a:?}: expected TYPE=VALUE"),
        })
        .collect()
}

async fn add(dir: &Path, fields: Fields) -> Result<()> {
    let Some(identifier) = fields.identifier.clone() else {
        bail!("user add needs --identifier");
    };
    let hash = password_hash(&fields)?;
    if hash.is_some() && fields.username.is_none() {
        bail!("a password needs a --username to log in with");
    }
    let store = open(dir).await?;
    let uid = store
        .user_add(
            &identifier,
            fields.username.as_deref(),
            hash.as_deref(),
            &attributes(&fields)?,
        )
        .await
        .context("cannot add the user")?;
    println!("user added: uid {}", uid.0);
    Ok(())
}

async fn find(
    store: &store::Store,
    uid: Option<i64>,
    identifier: Option<&str>,
) -> Result<model::UserId> {
    match (uid, identifier) {
        (Some(uid), _) => Ok(model::UserId(uid)),
        (None, Some(identifier)) => match store.user_get_by_identifier(identifier).await? {
            Some(user) => Ok(user.uid),
            None => bail!("no user with identifier {identifier:?}"),
        },
        (None, None) => bail!("name the user with --uid or --identifier"),
    }
}

async fn update(dir: &Path, uid: Option<i64>, fields: Fields) -> Result<()> {
    let store = open(dir).await?;
    let lookup = if uid.is_some() {
        None
    } else {
        fields.identifier.as_deref()
    };
    let uid = find(&store, uid, lookup).await?;
    let hash = password_hash(&fields)?;
    let attributes = attributes(&fields)?;
    let update = store::UserUpdate {
        identifier: if lookup.is_some() {
            None
        } else {
            fields.identifier.as_deref()
        },
        bb_username: fields.username.as_deref(),
        bb_password: hash.as_deref(),
        attributes: &attributes,
    };
    store
        .user_update(uid, &update)
        .await
        .context("cannot update the user")?;
    println!("user updated: uid {}", uid.0);
    Ok(())
}

async fn remove(dir: &Path, uid: Option<i64>, identifier: Option<&str>) -> Result<()> {
    let store = open(dir).await?;
    let uid = find(&store, uid, identifier).await?;
    store
        .user_remove(uid)
        .await
        .context("cannot remove the user")?;
    println!("user removed: uid {}", uid.0);
    Ok(())
}

async fn list(dir: &Path) -> Result<()> {
    let store = open(dir).await?;
    for user in store.users_list().await? {
        let attributes: Vec<String> = user
            .attributes
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        println!(
            "{}\t{}\t{}\t{}",
            user.uid.0,
            user.identifier,
            user.bb_username.as_deref().unwrap_or("-"),
            attributes.join(" ")
        );
    }
    Ok(())
}
