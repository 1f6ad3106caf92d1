//! `supervise` restarts failed and panicked parts and reports them in `Health`; a consumer loop
//! and a relay report their state while they run.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use seedwork::supervision::{supervise, Health, RestartPolicy};
use tokio::sync::{oneshot, Notify};

fn quick() -> RestartPolicy {
    RestartPolicy {
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(2),
        healthy_after: Duration::from_secs(30),
        stop_grace: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn a_failing_or_panicking_part_is_restarted_until_it_stops_on_purpose() {
    let health = Health::new();
    let runs = Arc::new(AtomicU32::new(0));
    let counter = runs.clone();
    let restarts = supervise(
        health.part("worker"),
        quick(),
        std::future::pending(),
        move || {
            let run = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                match run {
                    0 => Err(seedwork::Error::other("lost the connection")),
                    1 => panic!("a bug in the handler"),
                    _ => Ok(()),
                }
            }
        },
    )
    .await;
    assert_eq!(restarts, 2, "restarted after the error and after the panic");
    assert_eq!(runs.load(Ordering::SeqCst), 3);
    let status = health.report().parts["worker"].clone();
    assert!(!status.up, "a part that stopped on purpose is down");
    assert_eq!(status.detail, "stopped");
}

#[tokio::test]
async fn a_failed_part_is_down_with_its_reason_until_it_runs_again() {
    let health = Health::new();
    let part = health.part("consumer:commands");
    // The second run waits for `release`; meanwhile the report shows the restart happened.
    let release = Arc::new(Notify::new());
    let started_again = Arc::new(Notify::new());
    let runs = Arc::new(AtomicU32::new(0));
    let (stop, stopped) = oneshot::channel::<()>();
    let policy = RestartPolicy {
        initial_backoff: Duration::from_millis(200),
        ..quick()
    };
    let supervisor = {
        let (release, started_again, runs) = (release.clone(), started_again.clone(), runs.clone());
        tokio::spawn(supervise(
            part.clone(),
            policy,
            async {
                let _ = stopped.await;
            },
            move || {
                let run = runs.fetch_add(1, Ordering::SeqCst);
                let (release, started_again) = (release.clone(), started_again.clone());
                async move {
                    if run == 0 {
                        return Err(seedwork::Error::unavailable("broker: connection refused"));
                    }
                    started_again.notify_one();
                    release.notified().await;
                    Ok(())
                }
            },
        ))
    };
    // During the 200 ms backoff the part is down, naming the error.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let status = part.status().unwrap();
        if !status.up && status.detail.contains("connection refused") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never reported down"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(health.report().down(), ["consumer:commands"]);
    tokio::time::timeout(Duration::from_secs(10), started_again.notified())
        .await
        .expect("restarted after the backoff");
    assert!(part.status().unwrap().up, "up again once running");
    assert!(health.report().up());
    release.notify_one();
    let _ = stop.send(());
    let restarts = tokio::time::timeout(Duration::from_secs(10), supervisor)
        .await
        .expect("the supervisor stops on shutdown")
        .unwrap();
    assert_eq!(restarts, 1);
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_run_that_ignores_shutdown_is_aborted_after_the_grace() {
    let health = Health::new();
    let (stop, stopped) = oneshot::channel::<()>();
    let running = Arc::new(Notify::new());
    let policy = RestartPolicy {
        stop_grace: Duration::from_millis(50),
        ..quick()
    };
    let supervisor = {
        let running = running.clone();
        tokio::spawn(supervise(
            health.part("stubborn"),
            policy,
            async {
                let _ = stopped.await;
            },
            move || {
                let running = running.clone();
                async move {
                    running.notify_one();
                    std::future::pending::<()>().await;
                    Ok(())
                }
            },
        ))
    };
    running.notified().await;
    stop.send(()).unwrap();
    let restarts = tokio::time::timeout(Duration::from_secs(10), supervisor)
        .await
        .expect("the supervisor returns once the grace ran out")
        .unwrap();
    assert_eq!(restarts, 0);
    assert_eq!(health.report().parts["stubborn"].detail, "stopped");
}
