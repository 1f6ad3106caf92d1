//! Testing support (feature `testing`): given/when/then fixtures for aggregates and command
//! handlers, and the contract suites every backend runs.

pub mod contract;
pub mod fixtures;
pub mod saga;
