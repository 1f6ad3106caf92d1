//! The reference system as real processes: build the `alpespartners` example once, start
//! services with their own arguments, read what they print.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// The example binary, built (with the `pulsar` feature) on first use.
pub fn example_binary() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .expect("the workspace")
                .to_path_buf();
            let status = Command::new(cargo)
                .current_dir(&workspace)
                .args([
                    "build",
                    "-q",
                    "-p",
                    "alpespartners",
                    "--features",
                    "pulsar",
                    "--example",
                    "alpespartners",
                ])
                .status()
                .expect("cargo runs");
            assert!(
                status.success(),
                "building the alpespartners example failed"
            );
            // target/debug/deps/<test> → target/debug/examples/alpespartners
            let exe = std::env::current_exe().expect("the test binary");
            let profile_dir = exe
                .parent()
                .and_then(|deps| deps.parent())
                .expect("target/<profile>");
            profile_dir.join("examples").join("alpespartners")
        })
        .clone()
}

/// A free TCP port on 127.0.0.1 (free when asked; good enough for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// One running service process; killed when dropped.
pub struct Service {
    name: String,
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Service {
    /// Starts the example with `args` and extra environment variables.
    pub fn spawn(name: &str, args: &[String], env: &[(&str, &str)]) -> Service {
        let mut command = Command::new(example_binary());
        command
            .args(args)
            .env("RUST_LOG", "info,pulsar=error")
            .env_remove("DATABASE_URL")
            .env_remove("BROKER_HOST")
            .env_remove("PULSAR_ADDRESS")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("the example starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        for stream in [
            Box::new(stdout) as Box<dyn std::io::Read + Send>,
            Box::new(stderr),
        ] {
            let lines = Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    lines.lock().unwrap_or_else(|e| e.into_inner()).push(line);
                }
            });
        }
        Service {
            name: name.to_string(),
            child,
            lines,
        }
    }

    /// Everything printed so far (stdout and stderr).
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Printed lines that contain `needle`.
    pub fn lines_with(&self, needle: &str) -> Vec<String> {
        self.lines()
            .into_iter()
            .filter(|l| l.contains(needle))
            .collect()
    }

    /// Waits until a printed line contains `needle`; panics with the output after `timeout`.
    pub async fn wait_for(&mut self, needle: &str, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.lines().iter().any(|l| l.contains(needle)) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited ({status}) before printing {needle:?}:\n{}",
                    self.name,
                    self.lines().join("\n")
                );
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} did not print {needle:?} within {timeout:?}:\n{}",
                self.name,
                self.lines().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The service's name in the test.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `scripts/services ACTION pulsar` (stopping or starting the shared broker).
pub fn pulsar_service(action: &str) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/services");
    let status = Command::new(script)
        .args([action, "pulsar"])
        .stdout(Stdio::null())
        .status()
        .expect("scripts/services runs");
    assert!(status.success(), "scripts/services {action} pulsar failed");
}

/// A PostgreSQL URL scoped to a fresh schema (`SEEDWORK_POSTGRES_URL` or the local server).
pub async fn postgres_schema_url() -> String {
    let url = std::env::var("SEEDWORK_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://seedwork:seedwork@127.0.0.1:5432/seedwork".to_string());
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let admin = seedwork_sqlx::sqlx::PgPool::connect(&url)
        .await
        .expect("PostgreSQL is up (scripts/services up postgres)");
    seedwork_sqlx::sqlx::query(seedwork_sqlx::sqlx::AssertSqlSafe(format!(
        "CREATE SCHEMA {schema}"
    )))
    .execute(&admin)
    .await
    .expect("create schema");
    admin.close().await;
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20search_path%3D{schema}")
}
