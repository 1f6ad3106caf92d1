//! The publisher/consumer contract suite.
