//! The system under test as a child process: free ports, a fresh store, the health wait,
//! its memory, and stopping it.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tempfile::TempDir;
use tokio::process::{Child, Command};

use crate::cli::{self, SystemArgs};
use crate::store::{self, Store};

/// Which store the system runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// A fresh SQLite file in a temporary directory.
    Sqlite,
    /// A fresh schema in this PostgreSQL database.
    Postgres(String),
}

impl Database {
    /// Reads `sqlite` or `postgres://…`.
    pub fn parse(value: &str) -> Result<Database> {
        if value == "sqlite" {
            Ok(Database::Sqlite)
        } else if value.starts_with("postgres://") || value.starts_with("postgresql://") {
            Ok(Database::Postgres(value.to_string()))
        } else {
            bail!(
                "--database {value}: use `sqlite` (a fresh file) or `postgres://…` \
                 (a fresh schema): the benchmark counts what the system stores"
            )
        }
    }
}

/// The admin path that clears the backlog of every subscription of every topic in the
/// namespace the system's topics live in.
const CLEAR_BACKLOG_PATH: &str = "/admin/v2/namespaces/public/default/clearBacklog";

/// Clears the backlog of the broker's `public/default` subscriptions (see
/// `--clear-pulsar-backlog`); fails when the admin API does not answer 2xx within 30 s.
async fn clear_pulsar_backlog(admin: &str) -> Result<()> {
    let url = format!("{}{CLEAR_BACKLOG_PATH}", admin.trim_end_matches('/'));
    let response = reqwest::Client::new()
        .post(&url)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .with_context(|| format!("--clear-pulsar-backlog: POST {url}"))?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        bail!("--clear-pulsar-backlog: POST {url} answered {status}: {body}");
    }
    eprintln!("cleared the backlog of public/default ({url})");
    Ok(())
}

/// A free TCP port on 127.0.0.1 (bound, read and released; the system binds it next).
pub fn free_port() -> Result<u16> {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding 127.0.0.1:0 for a port")?;
    Ok(listener.local_addr()?.port())
}

/// The resident memory in KiB from the text of `/proc/PID/status` (its `VmRSS:` line).
pub fn parse_vmrss(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
}

/// The running system.
pub struct System {
    child: Child,
    pid: u32,
    /// `http://127.0.0.1:PORT` of the API.
    pub base_url: String,
    /// The count of stored reservations.
    pub store: Store,
    /// What the store is, for the report.
    pub store_label: String,
    /// What the broker is, for the report.
    pub broker_label: String,
    /// The binary that runs.
    pub binary: PathBuf,
    /// Where the system's output goes.
    pub log: PathBuf,
    schema: Option<(String, String)>,
    keep_schema: bool,
    _data_dir: TempDir,
}

impl System {
    /// Starts `binary` on free ports and a fresh store, writing its output to
    /// `out_dir/system.log`, with `environment` added to its environment, and waits for
    /// `GET /health` to answer 200.
    pub async fn start(
        args: &SystemArgs,
        binary: &Path,
        out_dir: &Path,
        environment: &[(&str, &str)],
    ) -> Result<System> {
        if !binary.is_file() {
            bail!(
                "no example binary at {}: build it first with\n  \
                 cargo build --release --example alpespartners\n\
                 (add --features pulsar for --broker pulsar://…; the same CARGO_TARGET_DIR), \
                 or pass --binary PATH",
                binary.display()
            );
        }
        let database = Database::parse(&args.database)?;
        if let Some(admin) = &args.clear_pulsar_backlog {
            clear_pulsar_backlog(admin).await?;
        }
        let data_dir = tempfile::Builder::new()
            .prefix("seedwork-load-")
            .tempdir()
            .context("creating a temporary data directory")?;
        let (database_arg, store_label, schema) = match &database {
            Database::Sqlite => {
                let path = data_dir.path().join("bench.db");
                let arg = format!("sqlite://{}", path.display());
                (arg, "SQLite (a fresh file)".to_string(), None)
            }
            Database::Postgres(url) => {
                let schema = store::schema_name();
                store::create_schema(url, &schema).await?;
                let label = format!("PostgreSQL (a fresh schema, {schema})");
                (
                    store::scoped_url(url, &schema),
                    label,
                    Some((url.clone(), schema)),
                )
            }
        };
        let started = spawn(
            args,
            binary,
            out_dir,
            &database_arg,
            data_dir.path(),
            environment,
        )
        .await;
        let (mut child, http) = match started {
            Ok(started) => started,
            Err(error) => {
                drop_run_schema(&schema).await;
                return Err(error);
            }
        };
        let base_url = format!("http://{http}");
        let log = out_dir.join("system.log");
        let ready = async {
            let timeout = cli::seconds(args.startup_timeout);
            wait_healthy(&mut child, &base_url, &log, timeout).await?;
            match &database {
                Database::Sqlite => Store::sqlite(&data_dir.path().join("bench.db")).await,
                Database::Postgres(_) => Store::postgres(&database_arg).await,
            }
        }
        .await;
        let store = match ready {
            Ok(store) => store,
            Err(error) => {
                let _ = child.kill().await;
                drop_run_schema(&schema).await;
                return Err(error);
            }
        };
        let pid = child.id().context("the system has exited")?;
        Ok(System {
            child,
            pid,
            base_url,
            store,
            store_label,
            broker_label: args.broker.clone(),
            binary: binary.to_path_buf(),
            log,
            schema,
            keep_schema: args.keep_schema,
            _data_dir: data_dir,
        })
    }

    /// Fails when the system has exited (pointing to its log).
    pub fn ensure_running(&mut self) -> Result<()> {
        ensure_running(&mut self.child, &self.log)
    }

    /// The CPU time used so far by the system, this load generator and, on the PostgreSQL
    /// store, the local PostgreSQL server.
    pub fn cpu(&self) -> crate::cpu::Sample {
        let postgres = matches!(self.store, crate::store::Store::Postgres(_));
        crate::cpu::sample(self.pid, postgres)
    }

    /// The system's resident memory in KiB (`VmRSS` of `/proc/PID/status`).
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        parse_vmrss(&status)
    }

    /// Kills the system, closes the store and drops the run's PostgreSQL schema (unless
    /// kept).
    pub async fn stop(mut self) -> Result<()> {
        self.store.close().await;
        if self.child.try_wait()?.is_none() {
            self.child.start_kill().context("killing the system")?;
        }
        tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .context("the system did not exit within 10 s of SIGKILL")??;
        if let Some((url, schema)) = &self.schema {
            if self.keep_schema {
                eprintln!("load: kept schema {schema}");
            } else {
                store::drop_schema(url, schema).await?;
            }
        }
        Ok(())
    }
}

async fn spawn(
    args: &SystemArgs,
    binary: &Path,
    out_dir: &Path,
    database: &str,
    data_dir: &Path,
    environment: &[(&str, &str)],
) -> Result<(Child, SocketAddr)> {
    let http = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?));
    let ui = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?));
    let log_path = out_dir.join("system.log");
    let log =
        File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
    let mut command = Command::new(binary);
    if let Some(sagas) = &args.sagas {
        command.arg("--sagas").arg(sagas);
    }
    let child = command
        .arg("--database")
        .arg(database)
        .arg("--broker")
        .arg(&args.broker)
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--http")
        .arg(http.to_string())
        .arg("--ui")
        .arg(ui.to_string())
        .current_dir(data_dir)
        .envs(environment.iter().copied())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    Ok((child, http))
}

async fn wait_healthy(
    child: &mut Child,
    base_url: &str,
    log: &Path,
    timeout: Duration,
) -> Result<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()?;
    let url = format!("{base_url}/health");
    let deadline = Instant::now() + timeout;
    loop {
        ensure_running(child, log)?;
        let last = match client.get(&url).send().await {
            Ok(response) if response.status().is_success() => return Ok(()),
            Ok(response) => format!("answered {}", response.status()),
            Err(error) => crate::drive::error_chain(&error),
        };
        if Instant::now() >= deadline {
            bail!(
                "GET /health did not answer 200 within {timeout:?} ({last}); see {}",
                log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn ensure_running(child: &mut Child, log: &Path) -> Result<()> {
    if let Some(status) = child.try_wait()? {
        bail!(
            "the system exited ({status}); its output ({}) ends with:\n{}",
            log.display(),
            log_tail(log, 20)
        );
    }
    Ok(())
}

/// Drops the run's schema after a failed start (reporting, not failing, if it cannot).
async fn drop_run_schema(schema: &Option<(String, String)>) {
    if let Some((url, schema)) = schema {
        if let Err(error) = store::drop_schema(url, schema).await {
            eprintln!("load: {error:#}");
        }
    }
}

/// The last `lines` lines of a file (empty when it cannot be read).
fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_free_port_can_be_bound_again() {
        let port = free_port().unwrap();
        assert_ne!(port, 0);
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
    }

    #[test]
    fn vmrss_is_read_in_kib() {
        let status = "Name:\talpespartners\nVmPeak:\t  100 kB\nVmRSS:\t   12345 kB\nThreads:\t4\n";
        assert_eq!(parse_vmrss(status), Some(12345));
        assert_eq!(parse_vmrss("Name:\tx\n"), None);
    }

    #[test]
    fn only_stores_that_can_be_counted() {
        assert_eq!(Database::parse("sqlite").unwrap(), Database::Sqlite);
        assert!(matches!(
            Database::parse("postgres://h/db").unwrap(),
            Database::Postgres(_)
        ));
        assert!(Database::parse("memory").is_err());
    }
}
