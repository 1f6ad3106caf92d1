//! AlpesPartners: the HTTP API (port 5001) with its command consumer and outbox relay,
//! `notificaciones` and the UI BFF (port 5678).
//!
//! By default everything runs in this one process on a SQLite file under `data/`, and the
//! messages travel through the durable transport in that same file: nothing to install, and a
//! crash (even `kill -9`) loses no accepted command or committed event. On PostgreSQL
//! (`--database postgres://…` or `DATABASE_URL`) the transport lives in PostgreSQL, so each
//! service can run as its own process (`--services api`, `--services notificaciones`,
//! `--services ui`, `--services pagos`, `--services integracion_gds`), as many copies as
//! wanted, all sharing that database. Pulsar
//! (`--broker pulsar://…`, or the tutorial's `BROKER_HOST` / `PULSAR_ADDRESS`; build with
//! `--features pulsar`) can carry the messages instead; `--broker memory` is the in-memory
//! broker (one process, not durable).
//!
//! The reservation saga (tutorial 8) runs with the API: each new reservation is paid
//! (`pagos`), confirmed with the GDS (`integracion_gds`) and approved, or cancelled with every
//! step undone when one fails. `--sagas off` keeps reservations pending for approval by hand.
//!
//! Reservations are event-sourced (tutorial 7): their events are kept in the store's event
//! streams, and the list queries read the projections built from them
//! (`GET /vuelos/reservas`, `GET /vuelos/reservas/totales`; `GET /proyecciones` shows their
//! progress). `--rebuild-projections` empties them and replays every event at start.
//!
//! Run: `cargo run --example alpespartners [-- --database URL --broker database|memory|URL
//! --services LIST --sagas on|off --saga-timeout SECONDS --rebuild-projections --data-dir DIR
//! --http ADDR --ui ADDR]`

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use alpespartners::system::{self, BrokerChoice, Config, Database, Services};
use tracing_subscriber::fmt::format::FmtSpan;

fn usage() -> &'static str {
    "usage: alpespartners [--database memory|sqlite://PATH|postgres://URL] \
     [--broker database|memory|pulsar://HOST:6650] \
     [--services all|api,notificaciones,ui,pagos,integracion_gds] [--sagas on|off] \
     [--saga-timeout SECONDS] [--rebuild-projections] \
     [--data-dir DIR] [--http ADDR] [--ui ADDR]\n\
     \n\
     --database  the store (default: SQLite at DIR/alpespartners.db; DATABASE_URL too)\n\
     --broker    database: the durable transport in the store's database (default; on\n\
     \x20           PostgreSQL, processes running different --services share it)\n\
     \x20           memory: in-process and NOT durable (one process, all services)\n\
     \x20           pulsar://HOST:6650: Apache Pulsar (build with --features pulsar)\n\
     --services  which services this process runs (default all)\n\
     --sagas     on: the reservation saga pays, confirms and approves each new\n\
     \x20           reservation (default); off: reservations wait for approval by hand\n\
     --saga-timeout SECONDS  how long each saga step waits for its answer (default 30)\n\
     --rebuild-projections  replay the read models of the list queries from the first\n\
     \x20           stored event at start (with the API)\n\
     --data-dir  where the default SQLite file lives (default data)\n\
     --http      the API's address (default 127.0.0.1:5001)\n\
     --ui        the UI's address (default 127.0.0.1:5678)"
}

fn parse_args() -> Result<Config, String> {
    let mut args = std::env::args().skip(1);
    let mut data_dir = PathBuf::from("data");
    let mut database = std::env::var("DATABASE_URL")
        .ok()
        .map(|v| Database::parse(&v));
    let mut broker = BrokerChoice::from_env();
    let mut services = Services::ALL;
    let mut http: Option<SocketAddr> = None;
    let mut ui: Option<SocketAddr> = None;
    let mut sagas = true;
    let mut saga_timeout: Option<std::time::Duration> = None;
    let mut rebuild_projections = false;
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--database" => database = Some(Database::parse(&value("--database")?)),
            "--broker" => broker = Some(BrokerChoice::parse(&value("--broker")?)),
            "--services" => services = Services::parse(&value("--services")?)?,
            "--data-dir" => data_dir = PathBuf::from(value("--data-dir")?),
            "--saga-timeout" => {
                let seconds: u64 = value("--saga-timeout")?
                    .parse()
                    .map_err(|e| format!("--saga-timeout: {e}"))?;
                if seconds == 0 {
                    return Err("--saga-timeout: must be at least 1 second".into());
                }
                saga_timeout = Some(std::time::Duration::from_secs(seconds));
            }
            "--rebuild-projections" => rebuild_projections = true,
            "--sagas" => {
                sagas = match value("--sagas")?.as_str() {
                    "on" => true,
                    "off" => false,
                    other => return Err(format!("--sagas: `{other}` is not on or off")),
                }
            }
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
    if let Some(broker) = broker {
        config.broker = broker;
    }
    if config.broker.in_memory(&config.database) && services != Services::ALL {
        return Err(
            "an in-memory broker lives in one process: run every service (--services all), \
             or share a database (--database postgres://…) or Pulsar (--broker pulsar://…)"
                .into(),
        );
    }
    config.services = services;
    config.sagas = sagas;
    config.reconstruir_proyecciones = rebuild_projections;
    if let Some(timeout) = saga_timeout {
        config.plazo_saga = timeout;
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
    // `ALPESPARTNERS_SPAN_TIMES=1` logs each span's time when it closes (with `RUST_LOG`
    // at debug for the spans wanted): how the load benchmark's `hops` breaks a request down.
    let span_times = std::env::var_os("ALPESPARTNERS_SPAN_TIMES").is_some_and(|v| v == "1");
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,pulsar::retry_op=error".into()),
        )
        .with_span_events(if span_times {
            FmtSpan::CLOSE
        } else {
            FmtSpan::NONE
        })
        .init();
    let config = match parse_args() {
        Ok(config) => config,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let database = config.database.clone();
    let broker = config.broker.clone();
    let services = config.services;
    let sagas = config.sagas;
    let running = match system::start(config).await {
        Ok(running) => running,
        Err(error) => {
            eprintln!("alpespartners: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("AlpesPartners is running");
    if let Some(addr) = running.http_addr {
        println!("  API         http://{addr}   (GET /health, GET /spec)");
    }
    if let Some(addr) = running.ui_addr {
        println!("  UI          http://{addr}/");
    }
    println!("  store       {database:?}");
    println!("  broker      {}", broker.describe(&database));
    println!("  topics      eventos-reserva, ciclo-reserva, comandos-reserva");
    println!("              comando-pagar-reserva, comando-revertir-pago, evento-pago");
    println!("              comando-confirmar-reserva, comando-revertir-confirmacion, evento-gds");
    println!("              comando-aprobar-reserva, comando-cancelar-reserva");
    let mut consumers = Vec::new();
    if services.api {
        consumers.push("comandos-reserva");
        consumers.push("comando-aprobar-reserva");
        consumers.push("comando-cancelar-reserva");
    }
    if services.api && sagas {
        consumers.push("saga-reservas (GET /sagas/{correlation_id})");
    }
    if services.api {
        consumers.push("projections reservas-lista, reservas-totales (GET /proyecciones)");
    }
    if services.pagos {
        consumers.push("pagos");
    }
    if services.integracion_gds {
        consumers.push("integracion_gds");
    }
    if services.notificaciones {
        consumers.push("notificaciones");
    }
    if services.ui {
        consumers.push("ui");
    }
    println!("  consumers   {}", consumers.join(", "));
    if services.api || services.ui || services.pagos || services.integracion_gds {
        println!("  outbox relay running");
    }
    println!("Ctrl-C stops it.");
    if let Err(error) = tokio::signal::ctrl_c().await {
        eprintln!("cannot wait for Ctrl-C: {error}");
    }
    println!("stopping…");
    running.shutdown().await;
    ExitCode::SUCCESS
}
