//! The `accordo` command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use backoffice::mediation::cases;
use backoffice::platform::access::Role;
use backoffice::platform::accounts::{self, NewUser, Username};
use backoffice::platform::audit::Actor;
use backoffice::rooms::invites;
use backoffice::rooms::room_store;
use backoffice::{StoreError, UnixMillis};
use clap::{Parser, Subcommand};
use signaling::clock::SystemClock;
use signaling::cluster::Ownership;
use signaling::hub::{Hub, SignalingSettings};

use crate::config::{mask_url_password, Config};
use crate::server::{self, StartError};
use crate::telemetry;

/// Exit code for a bad configuration or bad arguments (as clap uses for usage errors).
pub const EXIT_CONFIG: u8 = 2;
/// Exit code for a failure while running.
pub const EXIT_FAILURE: u8 = 1;

#[derive(Debug, Parser)]
#[command(
    name = "accordo",
    version,
    about = "Accordo: remote mediation rooms and the back office of mediation bodies.",
    long_about = "Accordo: remote mediation rooms and the back office of mediation bodies.\n\n\
        Without a subcommand, `serve` runs. Configuration comes from a TOML file (--config, \
        ACCORDO_CONFIG, or ./accordo.toml when present) and ACCORDO_* environment variables."
)]
pub struct Cli {
    /// The TOML configuration file.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default): migrations first, then listen.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage accounts from the server's shell.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Things to try Accordo with.
    Demo {
        #[command(subcommand)]
        command: DemoCommand,
    },
}

#[derive(Debug, Subcommand)]
enum DemoCommand {
    /// Open a demo case with its online room (a mediator and two parties, who wait to be
    /// admitted) and print their personal links, to open in separate browser windows.
    Room,
}

/// The people of the demo room: name, role and side.
const DEMO_PEOPLE: [(&str, &str, Option<&str>); 3] = [
    ("Avv. Maria Rossi", "mediator", None),
    ("Giovanni Bianchi", "party", Some("istante")),
    ("Lucia Verdi", "party", Some("chiamata")),
];

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Create an account and print its one-time password.
    CreateUser {
        /// Login name: 3-64 characters among a-z, 0-9, '.', '_', '-', '@'.
        #[arg(long)]
        username: String,
        /// One of: admin, segreteria, mediatore, consigliere.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Full name shown in the interface (defaults to the username).
        #[arg(long)]
        name: Option<String>,
    },
    /// Give an account a new one-time password, unlock it and end its sessions.
    ResetPassword {
        #[arg(long)]
        username: String,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Check the configuration and print it in effect, with secrets masked.
    Check,
}

fn parse_role(name: &str) -> Result<Role, String> {
    Role::parse(name).ok_or_else(|| {
        let names: Vec<&str> = Role::ALL.iter().map(|role| role.as_str()).collect();
        format!(
            "unknown role `{name}`; expected one of: {}",
            names.join(", ")
        )
    })
}

/// Runs the command line; returns the process exit code.
pub fn run() -> ExitCode {
    server::keep_created_files_private();
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref(), std::env::vars()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start the async runtime: {error}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let command = cli.command.unwrap_or(Command::Serve);
    let outcome = runtime.block_on(async move {
        match command {
            Command::Serve => serve(config).await,
            Command::Migrate => migrate(&config).await,
            Command::Admin { command } => admin(&config, command).await,
            Command::Demo {
                command: DemoCommand::Room,
            } => demo_room(&config).await,
            Command::Config {
                command: ConfigCommand::Check,
            } => check(&config),
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure { message, code }) => {
            eprintln!("{message}");
            ExitCode::from(code)
        }
    }
}

struct Failure {
    message: String,
    code: u8,
}

impl From<StartError> for Failure {
    fn from(error: StartError) -> Self {
        let code = match error {
            StartError::Config(_) => EXIT_CONFIG,
            _ => EXIT_FAILURE,
        };
        Failure {
            message: error.to_string(),
            code,
        }
    }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        Failure {
            message: error.to_string(),
            code: EXIT_FAILURE,
        }
    }
}

async fn serve(config: Config) -> Result<(), Failure> {
    let signals = StopSignals::register();
    telemetry::init_logging(&config);
    let server = server::start(config.clone()).await?;
    let scheme = if config.tls == crate::config::TlsMode::Off {
        "http"
    } else {
        "https"
    };
    println!(
        "Accordo {} listening on {scheme}://{} (public URL {})",
        env!("CARGO_PKG_VERSION"),
        server.local_addr,
        config.public_url
    );
    println!(
        "  database:      {}",
        mask_url_password(&config.database_url())
    );
    println!("  files:         {}", config.file_store());
    match &config.smtp_url {
        Some(smtp) => println!("  outgoing mail: {}", mask_url_password(smtp)),
        None => println!(
            "  outgoing mail: written as .eml files into {}",
            config.outbox_dir().display()
        ),
    }
    if let Some(first) = &server.first_start {
        println!();
        println!("First start: an administrator account was created.");
        println!("  username: admin");
        println!("  password: {}", first.admin_password.reveal());
        println!("  This password is shown only now and must be changed at first login.");
    }
    let trigger = server.shutdown_trigger();
    tokio::spawn(async move {
        signals.wait().await;
        tracing::info!("shutdown requested; finishing in-flight requests");
        trigger();
    });
    server.wait().await.map_err(|error| Failure {
        message: format!("server error: {error}"),
        code: EXIT_FAILURE,
    })
}

/// The stop signals, registered before the server starts: a SIGTERM that arrives during
/// start-up must stop the server cleanly, not kill the process.
struct StopSignals {
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
}

impl StopSignals {
    fn register() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Self {
                terminate: signal(SignalKind::terminate()).ok(),
                interrupt: signal(SignalKind::interrupt()).ok(),
            }
        }
        #[cfg(not(unix))]
        Self {}
    }

    async fn wait(self) {
        #[cfg(unix)]
        {
            async fn next(signal: Option<tokio::signal::unix::Signal>) {
                match signal {
                    Some(mut signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending().await,
                }
            }
            tokio::select! {
                () = next(self.terminate) => {}
                () = next(self.interrupt) => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

async fn migrate(config: &Config) -> Result<(), Failure> {
    let db = server::open_database(config).await?;
    db.close().await;
    println!(
        "Migrations applied to {}",
        mask_url_password(&config.database_url())
    );
    Ok(())
}

async fn admin(config: &Config, command: AdminCommand) -> Result<(), Failure> {
    let db = server::open_database(config).await?;
    let now = UnixMillis::now();
    let actor = Actor::command_line();
    let outcome = match command {
        AdminCommand::CreateUser {
            username,
            role,
            name,
        } => {
            let username = Username::parse(&username).map_err(|error| Failure {
                message: error.to_string(),
                code: EXIT_CONFIG,
            })?;
            let new = NewUser {
                display_name: name.unwrap_or_else(|| username.as_str().to_owned()),
                username,
                role,
                organism_id: None,
            };
            accounts::create_user(&db, &actor, now, new)
                .await
                .map(|(user, one_time)| {
                    println!("Created {} ({}).", user.username, user.role);
                    println!("One-time password: {}", one_time.reveal());
                })
        }
        AdminCommand::ResetPassword { username } => {
            accounts::reset_password(&db, &actor, now, &username)
                .await
                .map(|one_time| {
                    println!(
                        "New one-time password for {username}: {}",
                        one_time.reveal()
                    );
                })
        }
    };
    db.close().await;
    outcome.map_err(|error| match error {
        StoreError::NotFound => Failure {
            message: "no such user".to_owned(),
            code: EXIT_FAILURE,
        },
        StoreError::AlreadyExists(_) => Failure {
            message: "a user with this username already exists".to_owned(),
            code: EXIT_FAILURE,
        },
        other => other.into(),
    })
}

async fn demo_room(config: &Config) -> Result<(), Failure> {
    let db = server::open_database(config).await?;
    let actor = Actor::command_line();
    let now = UnixMillis::now();
    let reference = format!("DEMO-{}", now.0);
    let case =
        cases::create_minimal(&db, &actor, now, None, &reference, "Incontro di prova").await?;
    let settings = config.room_settings(false);
    let room = room_store::create_room(&db, &actor, now, &case.id, settings).await?;
    // The room's own path for adding members: a hub on this database, no media.
    let hub = Hub::new(
        db.clone(),
        Arc::new(SystemClock),
        SignalingSettings::default(),
        Ownership::Local,
        None,
    );
    let base = config.public_url.as_str().trim_end_matches('/');
    println!("Case {reference}: its room is open. Personal links:");
    for (name, role, side) in DEMO_PEOPLE {
        let role = rooms::Role::from_code(role).unwrap_or(rooms::Role::Party);
        let side = side.and_then(rooms::Side::from_code);
        let member = hub
            .add_member(room.id, actor.clone(), role, side, (*name).to_owned())
            .await
            .map_err(|error| Failure {
                message: error.to_string(),
                code: EXIT_FAILURE,
            })?;
        let token = invites::issue(&db, &actor, now, room.id, member, None).await?;
        println!("  {name}: {base}/r/{}", token.reveal());
    }
    db.close().await;
    Ok(())
}

fn check(config: &Config) -> Result<(), Failure> {
    crate::tls::server_config(config).map_err(|error| Failure {
        message: error.to_string(),
        code: EXIT_CONFIG,
    })?;
    print!("{}", config.to_masked_toml());
    Ok(())
}
