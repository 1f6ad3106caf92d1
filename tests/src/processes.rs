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
    BUILT.get_or_init(|| build_example(&["pulsar"])).clone()
}

/// The example binary as `cargo run --example alpespartners` builds it (default features,
/// Rust alone), built on first use.
pub fn default_example_binary() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| build_example(&[])).clone()
}

/// Builds the example with `features` and returns a copy of it that later builds with other
/// features do not replace.
fn build_example(features: &[&str]) -> PathBuf {
    // Build and copy under one lock: tests of one binary run in parallel threads, and another
    // feature set's build finishing between this build and its copy would put the wrong
    // binary at the shared path.
    static BUILDING: Mutex<()> = Mutex::new(());
    let _building = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf();
    let mut command = Command::new(cargo);
    command.current_dir(&workspace).args([
        "build",
        "-q",
        "--message-format=json-render-diagnostics",
        "-p",
        "alpespartners",
        "--example",
        "alpespartners",
    ]);
    if !features.is_empty() {
        command.args(["--features", &features.join(",")]);
    }
    let output = command
        .stderr(Stdio::inherit())
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "building the alpespartners example failed"
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| {
            message["reason"] == "compiler-artifact" && message["target"]["name"] == "alpespartners"
        })
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
        .map(|built| keep_per_features(&built, features))
        .expect("cargo reports the example's executable")
}

/// Cargo puts the example at one path whatever its features, so a later build with other
/// features would replace the binary an earlier test is about to start: keep a copy per
/// feature set and return that.
fn keep_per_features(built: &std::path::Path, features: &[&str]) -> PathBuf {
    let name = format!("alpespartners-features-{}", features.join("-"));
    let kept = built.with_file_name(name);
    std::fs::copy(built, &kept).expect("the example binary copies");
    kept
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
    /// Starts the example (built with the `pulsar` feature) with `args` and extra environment
    /// variables.
    pub fn spawn(name: &str, args: &[String], env: &[(&str, &str)]) -> Service {
        Service::spawn_binary(&example_binary(), name, args, env)
    }

    /// Starts `binary` (one of the example's builds) with `args` and extra environment
    /// variables.
    pub fn spawn_binary(
        binary: &std::path::Path,
        name: &str,
        args: &[String],
        env: &[(&str, &str)],
    ) -> Service {
        let mut command = Command::new(binary);
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

    /// Kills the process at once (SIGKILL on Unix: no shutdown, no cleanup) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
