//! The properties every broker adds to a dead-lettered message.
//!
//! When a [`Consumer`](super::Consumer) gives up on a message (it was nacked
//! [`max_deliveries`](super::RetryPolicy::max_deliveries) times, or a real broker could not
//! decode it), the message goes to the subscription's
//! [dead-letter topic](super::SubscriptionOptions::effective_dead_letter_topic) with its
//! envelope and properties unchanged, plus the four properties named here. Every broker
//! (the embedded one and each adapter) writes all four, with these names, so a tool that
//! inspects dead letters works on any of them; the broker contract suite checks it.
//!
//! ```
//! use seedwork::messaging::{dead_letter, Message};
//!
//! fn describe(dead: &Message) -> String {
//!     let property = |name| dead.properties.get(name).map_or("?", String::as_str);
//!     format!(
//!         "{} failed on `{}` for `{}` after {} deliveries: {}",
//!         dead.id(),
//!         property(dead_letter::ORIGINAL_TOPIC),
//!         property(dead_letter::SUBSCRIPTION),
//!         property(dead_letter::DELIVERIES),
//!         property(dead_letter::REASON),
//!     )
//! }
//! ```

/// The topic the message was consumed from when it was given up on (the dead letter's own
/// topic is the dead-letter topic).
pub const ORIGINAL_TOPIC: &str = "seedwork-dead-letter-original-topic";

/// The name of the subscription that gave up on the message.
pub const SUBSCRIPTION: &str = "seedwork-dead-letter-subscription";

/// Why the message was given up on, for people: e.g. `nacked 5 times`, or why it did not
/// decode. Never empty; its wording is not a stable format.
pub const REASON: &str = "seedwork-dead-letter-reason";

/// How many times the message had been delivered to the subscription when it was given up on,
/// as a decimal integer (the last [`Delivery::attempt`](super::Delivery::attempt)).
pub const DELIVERIES: &str = "seedwork-dead-letter-deliveries";
