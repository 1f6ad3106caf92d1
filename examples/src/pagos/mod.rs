//! `pagos`: the payment service of the tutorial's saga (tutorial 8, `src/pagos`). It takes
//! `ComandoPagarReserva` and `ComandoRevertirPago` from the broker and answers on `evento-pago`
//! with `ReservaPagada`, `PagoFallido` or `PagoRevertido` — one union on one topic.
//!
//! It knows nothing of the saga that asks: every reply carries the conversation's correlation
//! id because the framework passes it on from the command handled (no `id_correlacion` in any
//! payload).

pub mod dominio;
pub mod infraestructura;

use std::sync::Arc;

use seedwork::domain::Repository;

/// The payments repository, as the handlers receive it.
pub type Pagos = seedwork::application::Dep<dyn Repository<dominio::Pago>>;

/// The repository a backend provides (`Arc<dyn Repository<Pago>>`).
pub type RepositorioPagos = Arc<dyn Repository<dominio::Pago>>;
