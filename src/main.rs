//! The `cobrowse` command line (design §7): `serve`, and the administrative
//! commands `user`, `token`, `site` and `rules import|export` that work
//! directly on the database. Every command takes `--db PATH` (env
//! `COBROWSE_DB`) and `--config FILE` (env `COBROWSE_CONFIG`).

mod cli_rules;

use clap::{Args, Parser, Subcommand, ValueEnum};
use cobrowse::config::{Config, ConfigError, FileConfig, Overrides};
use cobrowse::rules::{RuleError, RulePack};
use cobrowse::store::{random_password, Role, Store, StoreError};
use cobrowse::web::{self, WebError};
use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// mimalloc: many small strings (the mirror's attributes and texts) are
/// allocated and freed per frame; it is markedly faster than the system
/// allocator there (docs/performance.md) and returns freed memory to the
/// system when sessions end.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Self-hosted co-browse server with a server-side privacy rewrite engine.
#[derive(Debug, Parser)]
#[command(name = "cobrowse", version, about)]
struct Cli {
    /// SQLite database file [default: cobrowse.db].
    #[arg(long, env = "COBROWSE_DB", global = true)]
    db: Option<PathBuf>,
    /// TOML configuration file.
    #[arg(long, env = "COBROWSE_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Manage agent and admin accounts.
    #[command(subcommand)]
    User(UserCmd),
    /// Manage API bearer tokens.
    #[command(subcommand)]
    Token(TokenCmd),
    /// Manage sites and their allowed origins.
    #[command(subcommand)]
    Site(SiteCmd),
    /// Import and export rule sets.
    #[command(subcommand)]
    Rules(RulesCmd),
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    cobrowse::config::parse_duration("duration", s).map_err(|e| e.to_string())
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "COBROWSE_LISTEN")]
    listen: Option<SocketAddr>,
    /// Base URL the server is reached at [default: http://LISTEN].
    #[arg(long, env = "COBROWSE_PUBLIC_URL")]
    public_url: Option<String>,
    /// End a session no agent joined after this long [default: 10m].
    #[arg(long, value_parser = parse_duration)]
    waiting_timeout: Option<Duration>,
    /// End an active session with no message from either side after this long [default: 30m].
    #[arg(long, value_parser = parse_duration)]
    inactivity_timeout: Option<Duration>,
    /// End the session when the agent's viewer is gone this long [default: 60s].
    #[arg(long, value_parser = parse_duration)]
    agent_away_timeout: Option<Duration>,
    /// End the session when the customer's page is gone this long [default: 60s].
    #[arg(long, value_parser = parse_duration)]
    customer_away_timeout: Option<Duration>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RoleArg {
    Agent,
    Admin,
}

#[derive(Debug, Subcommand)]
enum UserCmd {
    /// Create an account (prints a generated password unless --password-stdin).
    Add {
        name: String,
        #[arg(long, value_enum)]
        role: RoleArg,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a new password (prints a generated one unless --password-stdin).
    Passwd {
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// List accounts.
    List,
}

#[derive(Debug, Subcommand)]
enum TokenCmd {
    /// Create a bearer token for a user; the token is the last line printed.
    Create {
        /// The user the token acts as.
        name: String,
        /// A label for the token.
        #[arg(long, default_value = "cli")]
        label: String,
    },
    /// Revoke every token of a user.
    Revoke { name: String },
}

#[derive(Debug, Subcommand)]
enum SiteCmd {
    /// Create a site (prints its integration API key once).
    Add {
        key: String,
        /// An origin allowed to start sessions (repeatable).
        #[arg(long = "origin", required = true)]
        origins: Vec<String>,
        /// Display name [default: the key].
        #[arg(long, default_value = "")]
        name: String,
    },
    /// List sites and their allowed origins.
    List,
}

#[derive(Debug, Subcommand)]
enum RulesCmd {
    /// Validate a YAML rule pack (every error listed; non-zero exit if any).
    Check { file: PathBuf },
    /// Print PAGE.html as the agent would get it under the pack at --url.
    Apply {
        file: PathBuf,
        page: PathBuf,
        #[arg(long)]
        url: String,
    },
    /// Run the YAML rule test cases in DIR (non-zero exit on any failure).
    Test { dir: PathBuf },
    /// Replace a site's draft with a YAML rule pack (all or nothing).
    Import {
        file: PathBuf,
        #[arg(long)]
        site: String,
        /// Also publish the imported draft as a new version.
        #[arg(long)]
        publish: bool,
    },
    /// Print a site's draft (or latest published) rules as YAML.
    Export {
        #[arg(long)]
        site: String,
        #[arg(long)]
        published: bool,
    },
}

/// Failures of a command, printed as `error: …` with exit code 1.
#[derive(Debug, thiserror::Error)]
enum CliError {
    /// Invalid configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The database refused.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The server failed to start.
    #[error(transparent)]
    Web(#[from] WebError),
    /// A rule file is invalid.
    #[error(transparent)]
    Rules(#[from] RuleError),
    /// Reading input or binding a socket failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    /// The command cannot run as given.
    #[error("{0}")]
    Usage(String),
    /// A check or test failed (the message is the report).
    #[error("{0}")]
    Failed(String),
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> CliError {
    let context = context.into();
    move |source| CliError::Io { context, source }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = if matches!(cli.command, Command::Serve(_)) {
        "info"
    } else {
        "warn"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn load_file(path: &Option<PathBuf>) -> Result<FileConfig, CliError> {
    Ok(match path {
        Some(p) => FileConfig::read(p)?,
        None => FileConfig::default(),
    })
}

fn read_password_stdin() -> Result<String, CliError> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .map_err(io_err("cannot read the password from standard input"))?;
    let pw = s.trim_end_matches(['\r', '\n']).to_owned();
    if pw.is_empty() {
        return Err(CliError::Usage("no password on standard input".into()));
    }
    Ok(pw)
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let file = load_file(&cli.config)?;
    if let Command::Serve(args) = cli.command {
        let over = Overrides {
            listen: args.listen,
            db: cli.db,
            public_url: args.public_url,
            waiting_timeout: args.waiting_timeout,
            inactivity_timeout: args.inactivity_timeout,
            agent_away_timeout: args.agent_away_timeout,
            customer_away_timeout: args.customer_away_timeout,
        };
        return serve(Config::resolve(over, file)?).await;
    }
    if let Command::Rules(cmd) = &cli.command {
        if let Some(result) = offline_rules(cmd) {
            return result;
        }
    }
    let db = cli
        .db
        .or(file.db)
        .unwrap_or_else(|| PathBuf::from(cobrowse::config::DEFAULT_DB));
    let store = Store::open(&db).await?;
    match cli.command {
        Command::Serve(_) => Ok(()),
        Command::User(cmd) => user(&store, cmd).await,
        Command::Token(cmd) => token(&store, cmd).await,
        Command::Site(cmd) => site(&store, cmd).await,
        Command::Rules(cmd) => rules(&store, cmd).await,
    }
}

async fn serve(mut config: Config) -> Result<(), CliError> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(io_err(format!("cannot listen on {}", config.listen)))?;
    // `--listen HOST:0` picks a free port: the default public URL follows it.
    if config.listen.port() == 0 && config.public_url == format!("http://{}", config.listen) {
        let bound = listener
            .local_addr()
            .map_err(io_err("cannot read the bound address"))?;
        config.listen = bound;
        config.public_url = format!("http://{bound}");
    }
    let (state, boot) = web::build_state(config).await?;
    if let Some(pw) = &boot.admin_password {
        println!("Created the admin account.\n  user: admin\n  password: {pw}\n(shown once; change it with `cobrowse user passwd admin`)");
        tracing::info!("created the admin account (password printed once on stdout, never logged)");
    }
    if let Some(key) = &boot.demo_api_key {
        println!("Created the demo site; its integration API key is {key}");
    }
    let stop = web::shutdown_signal();
    let url = state.config.public_url.clone();
    println!("cobrowse listening on {url}  (demo shop: {url}/demo/, agent viewer: {url}/agent)");
    tracing::info!(listen = %state.config.listen, url = %url, "listening");
    web::serve(listener, state, stop)
        .await
        .map_err(io_err("server failed"))?;
    tracing::info!("stopped");
    Ok(())
}

async fn user(store: &Store, cmd: UserCmd) -> Result<(), CliError> {
    match cmd {
        UserCmd::Add {
            name,
            role,
            password_stdin,
        } => {
            let role = match role {
                RoleArg::Agent => Role::Agent,
                RoleArg::Admin => Role::Admin,
            };
            let (pw, generated) = if password_stdin {
                (read_password_stdin()?, false)
            } else {
                (random_password(), true)
            };
            store.create_user(&name, role, &pw).await?;
            println!("Created {} `{name}`.", role.as_str());
            if generated {
                println!("password: {pw}");
            }
        }
        UserCmd::Passwd {
            name,
            password_stdin,
        } => {
            let (pw, generated) = if password_stdin {
                (read_password_stdin()?, false)
            } else {
                (random_password(), true)
            };
            store.set_password(&name, &pw, "cli").await?;
            println!("Password of `{name}` changed.");
            if generated {
                println!("password: {pw}");
            }
        }
        UserCmd::List => {
            for u in store.list_users().await? {
                println!(
                    "{}\t{}{}",
                    u.name,
                    u.role.as_str(),
                    if u.disabled { "\tdisabled" } else { "" }
                );
            }
        }
    }
    Ok(())
}

async fn token(store: &Store, cmd: TokenCmd) -> Result<(), CliError> {
    match cmd {
        TokenCmd::Create { name, label } => {
            let token = store.create_token(&name, &label).await?;
            println!("Bearer token for `{name}` (shown once):");
            println!("{token}");
        }
        TokenCmd::Revoke { name } => {
            let n = store.revoke_tokens(&name).await?;
            println!("Revoked {n} token(s) of `{name}`.");
        }
    }
    Ok(())
}

async fn site(store: &Store, cmd: SiteCmd) -> Result<(), CliError> {
    match cmd {
        SiteCmd::Add { key, origins, name } => {
            let (site, api_key) = store.create_site(&key, &name, &origins, "cli").await?;
            println!(
                "Created site `{}` (origins: {}).",
                site.key,
                site.origins.join(", ")
            );
            println!("Snippet: <script src=\"https://YOUR-COBROWSE-SERVER/cobrowse.js\" data-site=\"{}\" async></script>", site.key);
            println!("Integration API key (shown once):");
            println!("{api_key}");
        }
        SiteCmd::List => {
            for s in store.list_sites().await? {
                println!("{}\t{}\t{}", s.key, s.name, s.origins.join(" "));
            }
        }
    }
    Ok(())
}

/// `rules check|apply|test` work on files only (no database).
fn offline_rules(cmd: &RulesCmd) -> Option<Result<(), CliError>> {
    Some(match cmd {
        RulesCmd::Check { file } => cli_rules::check(file)
            .map(|summary| println!("{summary}"))
            .map_err(CliError::Failed),
        RulesCmd::Apply { file, page, url } => cli_rules::apply(file, page, url)
            .map(|html| println!("{html}"))
            .map_err(CliError::Failed),
        RulesCmd::Test { dir } => match cli_rules::test(dir) {
            Ok((report, true)) => {
                println!("{report}");
                Ok(())
            }
            Ok((report, false)) => {
                println!("{report}");
                Err(CliError::Failed("some rule tests failed".into()))
            }
            Err(e) => Err(CliError::Failed(e)),
        },
        RulesCmd::Import { .. } | RulesCmd::Export { .. } => return None,
    })
}

async fn rules(store: &Store, cmd: RulesCmd) -> Result<(), CliError> {
    match cmd {
        RulesCmd::Check { .. } | RulesCmd::Apply { .. } | RulesCmd::Test { .. } => {
            return Err(CliError::Usage(
                "internal: offline rules command reached the store".into(),
            ));
        }
        RulesCmd::Import {
            file,
            site,
            publish,
        } => {
            let text = std::fs::read_to_string(&file)
                .map_err(io_err(format!("cannot read {}", file.display())))?;
            let pack = RulePack::from_yaml(&text)?;
            let s = store
                .site_by_key(&site)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("site `{site}`")))?;
            let version = store.import_pack(s.id, &pack, "cli", publish).await?;
            println!(
                "Draft of `{site}` replaced with {} rule(s).",
                pack.rules.len()
            );
            if let Some(v) = version {
                println!("Published as version {v} (new sessions use it; live sessions pick it up when published from the editor).");
            }
        }
        RulesCmd::Export { site, published } => {
            let s = store
                .site_by_key(&site)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("site `{site}`")))?;
            let (rules, settings) = if published {
                let v = store
                    .published(s.id)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("published rules of `{site}`")))?;
                (v.rules, v.settings)
            } else {
                let d = store
                    .draft(s.id)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("draft rules of `{site}`")))?;
                (d.rules, d.settings)
            };
            let pack = RulePack {
                version: 1,
                settings: (settings != Default::default()).then_some(settings),
                rules,
            };
            print!("{}", pack.to_yaml());
        }
    }
    Ok(())
}
