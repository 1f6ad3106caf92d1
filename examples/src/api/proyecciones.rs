//! The operators' view of the projections: how far each read model has read the event store,
//! and a rebuild that empties one and replays it from the first event (after a bug fix in a
//! projection, or a new column).

use std::sync::Arc;

use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Serialize;
use utoipa::ToSchema;

use seedwork::eventsourcing::ProjectionRunner;

use super::errores::{ApiError, ErrorBody};
use super::ruta::Id;

/// The projections this process runs (none when the router was built without them).
#[derive(Clone, Default)]
pub struct Proyecciones(pub Vec<Arc<ProjectionRunner>>);

impl Proyecciones {
    fn named(&self, nombre: &str) -> Result<&Arc<ProjectionRunner>, ApiError> {
        self.0
            .iter()
            .find(|runner| runner.name() == nombre)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("this process runs no projection named `{nombre}`"),
                )
            })
    }
}

/// A projection's progress.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProyeccionBody {
    /// Its name.
    pub nombre: String,
    /// The global position of the last event it applied (0: none).
    pub posicion: u64,
    /// Whether it has applied every stored event (false while it catches up).
    pub al_dia: bool,
}

/// The result of a rebuild.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReconstruccionBody {
    /// The projection.
    pub nombre: String,
    /// Events this request replayed (the projection's own runner, following the store, may
    /// have replayed some of them meanwhile).
    pub eventos: usize,
    /// The checkpoint when the rebuild ended: every event up to it is in the read model again.
    pub posicion: u64,
}

/// Each projection's progress through the event store.
#[utoipa::path(get, path = "/proyecciones", tag = "system",
    responses(
        (status = 200, description = "Every projection this process runs", body = [ProyeccionBody]),
        (status = 503, description = "The store is unavailable", body = ErrorBody),
    ))]
pub(super) async fn estado(
    Extension(proyecciones): Extension<Proyecciones>,
) -> Result<Json<Vec<ProyeccionBody>>, ApiError> {
    let mut cuerpos = Vec::with_capacity(proyecciones.0.len());
    for runner in &proyecciones.0 {
        cuerpos.push(ProyeccionBody {
            nombre: runner.name().to_string(),
            posicion: runner.position().await?,
            al_dia: !runner.behind().await?,
        });
    }
    Ok(Json(cuerpos))
}

/// Empties a projection's read model and replays every stored event into it.
#[utoipa::path(post, path = "/proyecciones/{nombre}/reconstruir", tag = "system",
    params(("nombre" = String, Path, description = "The projection: reservas-totales or reservas-lista")),
    responses(
        (status = 200, description = "Rebuilt", body = ReconstruccionBody),
        (status = 400, description = "A name that cannot be one: blank, a control character such as NUL, over 128 characters, or not UTF-8", body = ErrorBody),
        (status = 404, description = "No such projection in this process", body = ErrorBody),
        (status = 409, description = "Its runner moved the checkpoint meanwhile; try again", body = ErrorBody),
        (status = 503, description = "The store is unavailable", body = ErrorBody),
    ))]
pub(super) async fn reconstruir(
    Extension(proyecciones): Extension<Proyecciones>,
    Id(nombre): Id,
) -> Result<Json<ReconstruccionBody>, ApiError> {
    let runner = Arc::clone(proyecciones.named(&nombre)?);
    // In a task of its own: a request that times out does not cut the replay short.
    let (eventos, posicion) = tokio::spawn(async move {
        let eventos = runner.rebuild().await?;
        Ok::<_, seedwork::Error>((eventos, runner.position().await?))
    })
    .await
    .map_err(|error| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the rebuild stopped: {error}"),
        )
    })??;
    Ok(Json(ReconstruccionBody {
        nombre,
        eventos,
        posicion,
    }))
}
