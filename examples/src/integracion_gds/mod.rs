//! `integracion_gds`: the service that confirms a reservation with the global distribution
//! system (tutorial 8, `src/integracion_gds`). It takes `ComandoConfirmarReserva` and
//! `ComandoRevertirConfirmacion` from the broker and answers on `evento-gds` with
//! `ReservaConfirmada`, `ConfirmacionFallida` or `ConfirmacionRevertida`, one union.
//!
//! The GDS itself is outside this system; the service records the confirmations it obtained
//! so that it can revert them.

pub mod dominio;
pub mod infraestructura;

use std::sync::Arc;

use seedwork::domain::Repository;

/// The confirmations repository, as the handlers receive it.
pub type Confirmaciones = seedwork::application::Dep<dyn Repository<dominio::ConfirmacionGds>>;

/// The repository a backend provides.
pub type RepositorioConfirmaciones = Arc<dyn Repository<dominio::ConfirmacionGds>>;
