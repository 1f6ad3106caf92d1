//! Contract suites: one set of tests for any implementation of a port.
//!
//! Each suite is a list of public `async fn`s taking the implementation under test; an adapter
//! calls them from its own `#[tokio::test]`s (or all at once with `run_all`). They create their
//! own uniquely named topics and rows, so they can run against a shared, long-lived backend.

pub mod broker;
pub mod store;
