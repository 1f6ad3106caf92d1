//! The writes a unit of work makes last, sent to SQLite in one call with its `COMMIT`.
//!
//! A unit of work ends with writes whose result nobody reads: a consumer's carried
//! acknowledgements, then its outbox (or, with direct delivery, its topic-log append). On
//! SQLite every call is a hand-off to the connection's thread, which costs more than these
//! statements, and SQLite runs several statements with their binds in one call. So on SQLite
//! [`SqlTransaction`](crate::SqlTransaction) queues them here and sends them with `COMMIT`
//! (`INSERT …; DELETE …; COMMIT`): one call where there were three.
//!
//! Nothing is reordered against what the transaction runs later: any other statement first
//! sends what is queued (see `SqlTransaction::ready`). If a queued statement fails, the calls
//! after it in the batch do not run, `COMMIT` included, and the transaction's connection is
//! closed, so SQLite rolls the whole transaction back.
//!
//! sqlx binds the arguments of such a batch across its statements: a plain `?` takes the next
//! argument after those the statements before it took, while `?N` names the N-th argument of
//! the whole batch (and sqlx stops binding a statement at its first slot past the last
//! argument, which numbered slots after a gap reach). [`flatten`] writes every parameter of a
//! queued statement as a plain `?` and lists the arguments in that order, so that statements
//! written alone (some with `?N`, some naming one argument twice) can be joined.

use sqlx::{AssertSqlSafe, Executor};

use crate::dialect::{on, Bind, Connection, Dialect, Statement};
use crate::error::Operation;

/// A value bound to a queued statement.
pub(crate) enum Arg<D: Dialect> {
    Int(i64),
    Text(String),
    OptText(Option<String>),
    Sequences(D::Sequences),
}

impl<D: Dialect> Clone for Arg<D> {
    fn clone(&self) -> Self {
        match self {
            Arg::Int(value) => Arg::Int(*value),
            Arg::Text(value) => Arg::Text(value.clone()),
            Arg::OptText(value) => Arg::OptText(value.clone()),
            Arg::Sequences(value) => Arg::Sequences(value.clone()),
        }
    }
}

/// Binds `arg` as `statement`'s next parameter.
pub(crate) fn bind_arg<D: Dialect>(
    statement: Statement<'static, D::Db>,
    arg: Arg<D>,
) -> Statement<'static, D::Db> {
    match arg {
        Arg::Int(value) => statement.arg(value),
        Arg::Text(value) => statement.arg(value),
        Arg::OptText(value) => statement.arg(value),
        Arg::Sequences(value) => statement.arg(value),
    }
}

/// A statement waiting for the commit, with its arguments in order and what it does (for the
/// error, should it fail).
pub(crate) struct Queued<D: Dialect> {
    pub(crate) sql: &'static str,
    pub(crate) args: Vec<Arg<D>>,
    pub(crate) operation: Operation,
}

/// The statements queued so far, in the order they were queued.
pub(crate) struct CommitTail<D: Dialect> {
    queued: Vec<Queued<D>>,
}

/// Batches of up to this many statements keep their prepared statements in the connection's
/// cache (a unit of work queues one or two); longer ones, made of many single-message outbox
/// inserts, are prepared for the call only, so that they do not crowd the cache out.
const CACHED_UP_TO: usize = 3;

/// Which statement of a batch failed.
#[derive(Debug)]
pub(crate) enum Failed {
    /// The statement before the queued ones (`BEGIN IMMEDIATE`).
    First,
    /// A queued statement, doing this.
    Queued(Operation),
    /// The statement after them (`COMMIT`).
    Last,
}

impl<D: Dialect> Default for CommitTail<D> {
    fn default() -> Self {
        CommitTail { queued: Vec::new() }
    }
}

impl<D: Dialect> CommitTail<D> {
    pub(crate) fn push(&mut self, queued: Queued<D>) {
        self.queued.push(queued);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queued.is_empty()
    }

    /// Runs `first` (no parameters: `BEGIN IMMEDIATE`), then everything queued, then `last`
    /// (no parameters: `COMMIT`), in one call; empties the queue, whatever the outcome. On
    /// failure, which statement failed: the ones after it did not run.
    pub(crate) async fn send(
        &mut self,
        connection: &mut Connection<D>,
        first: Option<&str>,
        last: Option<&str>,
    ) -> Result<(), (Failed, sqlx::Error)> {
        use futures_util::TryStreamExt;

        let queued = std::mem::take(&mut self.queued);
        let mut sql = String::new();
        let mut operations = Vec::with_capacity(queued.len());
        let mut orders = Vec::with_capacity(queued.len());
        for statement in &queued {
            let (plain, order) = flatten(statement.sql);
            sql.push_str(&plain);
            sql.push_str(";\n");
            orders.push(order);
        }
        let first_statements = usize::from(first.is_some());
        if let Some(first) = first {
            sql.insert_str(0, &format!("{first};\n"));
        }
        if let Some(last) = last {
            sql.push_str(last);
        }
        let persistent = queued.len() <= CACHED_UP_TO;
        let mut batch: Statement<'_, D::Db> =
            sqlx::query(AssertSqlSafe(sql)).persistent(persistent);
        for (statement, order) in queued.into_iter().zip(orders) {
            operations.push(statement.operation);
            for arg in order
                .into_iter()
                .filter_map(|n| statement.args.get(n).cloned())
            {
                batch = bind_arg::<D>(batch, arg);
            }
        }
        // Each statement ends with one result (its rows, if any, come before it): counting
        // them says how far the batch got.
        let mut done: usize = 0;
        let mut results = on::<D>(connection).fetch_many(batch);
        loop {
            match results.try_next().await {
                Ok(Some(sqlx::Either::Left(_))) => done += 1,
                Ok(Some(sqlx::Either::Right(_))) => {}
                Ok(None) => return Ok(()),
                Err(error) => {
                    let failed = match done.checked_sub(first_statements) {
                        None => Failed::First,
                        Some(place) => operations
                            .get(place)
                            .copied()
                            .map_or(Failed::Last, Failed::Queued),
                    };
                    return Err((failed, error));
                }
            }
        }
    }
}

/// `sql` (one statement written alone, in SQLite's syntax) with every parameter written as a
/// plain `?`, and for each of them in the order they appear, which of the statement's
/// arguments it takes (from 0): `?N` its N-th, a plain `?` the one after the largest named so
/// far (SQLite's numbering).
/// Quoted text is left as it is; comments are not looked for (the crate's statements have
/// none).
pub(crate) fn flatten(sql: &str) -> (String, Vec<usize>) {
    let mut out = String::with_capacity(sql.len());
    let mut order = Vec::new();
    let mut chars = sql.chars().peekable();
    let mut largest = 0;
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        if let Some(open) = quote {
            out.push(c);
            if c == open {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' => {
                quote = Some(c);
                out.push(c);
            }
            '?' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                    digits.push(d);
                    chars.next();
                }
                // As SQLite numbers them: `?N` is N, a plain `?` one more than the largest so far.
                let n = digits.parse::<usize>().unwrap_or(largest + 1);
                largest = largest.max(n);
                order.push(n.saturating_sub(1));
                out.push('?');
            }
            _ => out.push(c),
        }
    }
    (out, order)
}

#[cfg(test)]
mod tests {
    use super::flatten;

    /// The statements SQLite's units of work queue for their commit, as `flatten` reads them:
    /// each argument bound where the statement names it.
    #[cfg(feature = "sqlite")]
    #[test]
    fn the_queued_sqlite_statements_flatten_to_their_arguments() {
        use crate::dialect::Dialect;
        use crate::sqlite::Sqlite;

        let order = |sql: &str| flatten(sql).1;
        // `?2` (the time) is written before `?1` (the list).
        assert_eq!(order(Sqlite::TRANSPORT.append_many), vec![1, 0]);
        assert_eq!(order(Sqlite::TRANSPORT.ack_many), vec![0, 1, 2, 3]);
        assert_eq!(order(Sqlite::SQL.insert_outbox), vec![0, 1, 2, 3, 4, 5]);
        for sql in [
            Sqlite::TRANSPORT.append_many,
            Sqlite::TRANSPORT.ack_many,
            Sqlite::SQL.insert_outbox,
        ] {
            assert!(!sql.contains("--") && !sql.contains("/*"), "{sql}");
        }
    }

    #[test]
    fn plain_parameters_keep_their_order() {
        assert_eq!(
            flatten("DELETE FROM t WHERE a = ? AND b = ?"),
            (
                "DELETE FROM t WHERE a = ? AND b = ?".to_string(),
                vec![0, 1]
            )
        );
    }

    #[test]
    fn numbered_parameters_become_plain_in_the_order_they_appear() {
        assert_eq!(
            flatten("SELECT ?2, ?1, ?2 FROM json_each(?1)"),
            (
                "SELECT ?, ?, ? FROM json_each(?)".to_string(),
                vec![1, 0, 1, 0]
            )
        );
        assert_eq!(flatten("SELECT ?10"), ("SELECT ?".to_string(), vec![9]));
        // A plain `?` after `?N` is one more than the largest so far, as in SQLite.
        assert_eq!(
            flatten("UPDATE t SET a = ?, b = ?3 WHERE c = ?1 AND d = ?"),
            (
                "UPDATE t SET a = ?, b = ? WHERE c = ? AND d = ?".to_string(),
                vec![0, 2, 0, 3]
            )
        );
    }

    #[test]
    fn quoted_text_is_left_alone() {
        assert_eq!(
            flatten("SELECT json_extract(value, '$[0] ?'), \"a?\" FROM x WHERE y = ?"),
            (
                "SELECT json_extract(value, '$[0] ?'), \"a?\" FROM x WHERE y = ?".to_string(),
                vec![0]
            )
        );
        assert_eq!(
            flatten("SELECT 'it''s ?', ?"),
            ("SELECT 'it''s ?', ?".to_string(), vec![0])
        );
    }
}
