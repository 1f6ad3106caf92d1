//! Helpers shared by the workspace's end-to-end tests.

pub mod faults;
pub mod processes;
pub mod system;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use seedwork::messaging::{Message, Publisher};
use seedwork::{Error, Result};

/// A publisher in front of another that can be switched off, like a broker going down.
#[derive(Clone)]
pub struct SwitchablePublisher<P> {
    inner: P,
    up: Arc<AtomicBool>,
}

impl<P> SwitchablePublisher<P> {
    /// Starts up.
    pub fn new(inner: P) -> Self {
        SwitchablePublisher {
            inner,
            up: Arc::new(AtomicBool::new(true)),
        }
    }

    /// Takes the "broker" down (`false`) or brings it back (`true`).
    pub fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
    }
}

#[async_trait]
impl<P: Publisher> Publisher for SwitchablePublisher<P> {
    async fn publish(&self, message: &Message) -> Result<()> {
        if !self.up.load(Ordering::SeqCst) {
            // An outage, not a refusal: the relay must keep the entries, never park them.
            return Err(Error::unavailable("connection refused"));
        }
        self.inner.publish(message).await
    }
}

/// Polls `condition` every 10 ms until it holds, for at most `limit`; returns whether it held.
pub async fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
