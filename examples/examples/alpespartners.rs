//! AlpesPartners in one process: the HTTP API (port 5001), the command consumer, the outbox
//! relay, `notificaciones` and the UI BFF (port 5678), on the embedded broker and a SQLite file
//! under `data/` — or PostgreSQL with `--database postgres://…` (or `DATABASE_URL`).
//!
//! Run: `cargo run --example alpespartners [-- --database URL --data-dir DIR --http ADDR --ui ADDR]`

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use alpespartners::system::{self, Config, Database};

fn usage() -> &'static str {
    "usage: alpespartners [--database memory|sqlite://PATH|postgres://URL] [--data-dir DIR] \
     [--http ADDR] [--ui ADDR]"
}

fn parse_args() -> Result<Config, String> {
    let mut args = std::env::args().skip(1);
    let mut data_dir = PathBuf::from("data");
    let mut database = std::env::var("DATABASE_URL")
        .ok()
        .map(|v| Database::parse(&v));
    let mut http: Option<SocketAddr> = None;
    let mut ui: Option<SocketAddr> = None;
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--database" => database = Some(Database::parse(&value("--database")?)),
            "--data-dir" => data_dir = PathBuf::from(value("--data-dir")?),
            "--http" => {
                http = Some(
                    value("--http")?
                        .parse()
                        .map_err(|e| format!("--http: {e}"))?,
                )
            }
            "--ui" => ui = Some(value("--ui")?.parse().map_err(|e| format!("--ui: {e}"))?),
            "-h" | "--help" => return Err(usage().to_string()),
            other => return Err(format!("unknown argument `{other}`\n{}", usage())),
        }
    }
    let mut config = Config::local(&data_dir);
    if let Some(database) = database {
        config.database = database;
    }
    if let Some(http) = http {
        config.http = http;
    }
    if let Some(ui) = ui {
        config.ui = ui;
    }
    Ok(config)
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let config = match parse_args() {
        Ok(config) => config,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let database = config.database.clone();
    let running = match system::start(config).await {
        Ok(running) => running,
        Err(error) => {
            eprintln!("alpespartners: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("AlpesPartners is running");
    println!(
        "  API         http://{}   (GET /health, GET /spec)",
        running.http_addr
    );
    println!("  UI          http://{}/", running.ui_addr);
    println!("  store       {database:?}");
    println!("  broker      embedded (topics eventos-reserva, comandos-reserva)");
    println!("  consumers   comandos-reserva, notificaciones; outbox relay running");
    println!("Ctrl-C stops it.");
    if let Err(error) = tokio::signal::ctrl_c().await {
        eprintln!("cannot wait for Ctrl-C: {error}");
    }
    println!("stopping…");
    running.shutdown().await;
    ExitCode::SUCCESS
}
