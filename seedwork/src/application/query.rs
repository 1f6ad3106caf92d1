use async_trait::async_trait;

use crate::error::Result;

/// A request to read the system (`Query`), with the type its handler returns
/// (`QueryResultado`).
///
/// Derive it: `#[derive(Query)]` with `#[query(output = T)]`.
pub trait Query: Send + 'static {
    /// What the handler returns.
    type Output: Send + 'static;
    /// The query's name in errors and traces.
    const NAME: &'static str;
}

/// The one handler of a query type (`QueryHandler`). Queries read committed state and open no
/// unit of work.
#[async_trait]
pub trait QueryHandler<Q: Query>: Send + Sync + 'static {
    /// Answers the query.
    async fn handle(&self, query: Q) -> Result<Q::Output>;
}
