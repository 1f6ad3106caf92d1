use async_trait::async_trait;

use crate::error::Result;
use crate::uow::UnitOfWork;

/// A request to change the system (`Comando`), with the type its handler returns.
///
/// Derive it: `#[derive(Command)]`, with `#[command(output = T)]` when the handler returns
/// something other than `()`.
pub trait Command: Send + 'static {
    /// What the handler returns on success (an id, a summary, or `()`).
    type Output: Send + 'static;
    /// The command's name in errors and traces.
    const NAME: &'static str;
}

/// The one handler of a command type (`ComandoHandler`).
///
/// The [`Bus`](super::Bus) opens a [`UnitOfWork`] for every command, passes it in, and commits
/// it when the handler returns `Ok` (rolling back on `Err`), so the handler's changes, the
/// domain-event reactions and the outbox commit together.
///
/// ```
/// use seedwork::prelude::*;
///
/// struct Greet(String);
/// impl Command for Greet {
///     type Output = String;
///     const NAME: &'static str = "Greet";
/// }
///
/// struct GreetHandler;
/// #[seedwork::async_trait]
/// impl CommandHandler<Greet> for GreetHandler {
///     async fn handle(&self, command: Greet, _uow: &mut UnitOfWork) -> Result<String> {
///         Ok(format!("hola, {}", command.0))
///     }
/// }
///
/// # tokio_test(async {
/// let bus = Bus::builder().command(GreetHandler).build()?;
/// assert_eq!(bus.dispatch(Greet("Ana".into())).await?, "hola, Ana");
/// # Ok::<(), Box<dyn std::error::Error>>(()) });
/// # fn tokio_test<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
/// # }
/// ```
#[async_trait]
pub trait CommandHandler<C: Command>: Send + Sync + 'static {
    /// Carries the command out inside `uow`.
    async fn handle(&self, command: C, uow: &mut UnitOfWork) -> Result<C::Output>;
}
