use std::future::Future;
use std::time::{Duration, Instant};

use super::HealthPart;
use crate::error::Result;

/// How [`supervise`] waits between restarts: `initial_backoff` after the first failure,
/// doubling after each further one up to `max_backoff`; a run that lasted at least
/// `healthy_after` resets the backoff. There is no limit on restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    /// The wait after a first failure.
    pub initial_backoff: Duration,
    /// The longest wait between two runs.
    pub max_backoff: Duration,
    /// A run this long counts as healthy: the next failure waits `initial_backoff` again.
    pub healthy_after: Duration,
    /// After shutdown, how long a run may take to finish what it is doing (a run should watch
    /// the same shutdown signal) before it is aborted.
    pub stop_grace: Duration,
}

impl Default for RestartPolicy {
    /// 100 ms, doubling up to 10 s; reset after 30 s of running; 5 s to stop.
    fn default() -> Self {
        RestartPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            healthy_after: Duration::from_secs(30),
            stop_grace: Duration::from_secs(5),
        }
    }
}

impl RestartPolicy {
    /// The wait after `failures` consecutive failures (≥ 1).
    pub fn backoff(&self, failures: u32) -> Duration {
        crate::backoff::exponential(self.initial_backoff, 2, failures, self.max_backoff)
    }
}

/// Runs a part and keeps it running until `shutdown` completes.
///
/// `run` starts the part once (subscribe, then consume; connect, then forward…) and returns
/// when it stops; it should watch the same shutdown signal and return `Ok(())` on it (it gets
/// `policy.stop_grace` to do so before it is aborted). Each run is spawned as a task of its
/// own, so a panic is caught like an error. When a run fails or panics, `part` is reported down with the reason, and after the
/// policy's backoff `run` is called again; `part` is reported up when a run starts (the part
/// may report more precisely while it runs). A run that returns `Ok(())` before `shutdown`
/// has stopped on purpose: the part is reported down ("stopped") and not restarted.
///
/// Returns how many times the part was restarted.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::sync::Arc;
/// use seedwork::supervision::{supervise, Health, RestartPolicy};
///
/// let health = Health::new();
/// let runs = Arc::new(AtomicU32::new(0));
/// let policy = RestartPolicy { initial_backoff: std::time::Duration::ZERO, ..Default::default() };
/// let counter = runs.clone();
/// let restarts = supervise(health.part("flaky"), policy, std::future::pending(), move || {
///     let run = counter.fetch_add(1, Ordering::SeqCst);
///     async move {
///         if run < 2 { Err(seedwork::Error::other("lost the connection")) } else { Ok(()) }
///     }
/// })
/// .await;
/// assert_eq!(restarts, 2);
/// assert_eq!(runs.load(Ordering::SeqCst), 3);
/// # }
/// ```
pub async fn supervise<F, Fut>(
    part: HealthPart,
    policy: RestartPolicy,
    shutdown: impl Future<Output = ()>,
    mut run: F,
) -> u32
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    tokio::pin!(shutdown);
    let mut failures = 0u32;
    let mut restarts = 0u32;
    loop {
        part.up();
        let started = Instant::now();
        let mut task = tokio::spawn(run());
        let outcome = tokio::select! {
            _ = &mut shutdown => {
                if tokio::time::timeout(policy.stop_grace, &mut task).await.is_err() {
                    task.abort();
                    tracing::warn!(part = part.name(), "part did not stop in time; aborted");
                }
                part.down("stopped");
                return restarts;
            }
            joined = &mut task => joined,
        };
        let why = match outcome {
            Ok(Ok(())) => {
                part.down("stopped");
                return restarts;
            }
            Ok(Err(error)) => error.to_string(),
            Err(join_error) => match join_error.try_into_panic() {
                Ok(payload) => format!("panicked: {}", panic_message(payload)),
                Err(_) => "cancelled".to_string(),
            },
        };
        if started.elapsed() >= policy.healthy_after {
            failures = 0;
        }
        failures += 1;
        let wait = policy.backoff(failures);
        tracing::error!(part = part.name(), error = %why, ?wait, "part failed; restarting");
        part.down(format!("{why} (restarting)"));
        tokio::select! {
            _ = &mut shutdown => return restarts,
            _ = tokio::time::sleep(wait) => {}
        }
        restarts += 1;
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-text panic".to_string())
}
