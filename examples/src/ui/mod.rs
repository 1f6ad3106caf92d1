//! `ui`: the BFF. Serves the reservation page, forwards every event of `ciclo-reserva` to the
//! connected browsers over a websocket, and turns the page's form into a `ComandoCrearReserva`
//! sent through the broker — so the browser sends a command and receives its result
//! asynchronously, the tutorial's goal. The page then follows the reservation's saga through
//! `/sagas/{id}` (the conversation's id, which the BFF answers when it accepts the command).

use std::future::Future;
use std::sync::Arc;

use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{Duration, SecondsFormat, Utc};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast;

use seedwork::application::{Bus, Context};
use seedwork::messaging::Consumer;
use seedwork::saga::SagaStore;

use crate::api::errores::ApiError;
use crate::vuelos::aplicacion::dto::{
    AeropuertoDto, ItinerarioDto, LegDto, OdoDto, ReservaEntradaDto, SegmentoDto,
};
use crate::vuelos::aplicacion::SolicitarReserva;
use crate::vuelos::infraestructura::consumidores::DEMO_FALLA;

/// The prefix of the BFF's subscriptions to `ciclo-reserva` (see [`suscripcion_de`]).
///
/// Earlier versions subscribed durably as `aeroalpes-bff-HOST-IP-PORT`; a UI process deletes
/// the one of its own address when it starts ([`suscripcion_durable_anterior`]).
pub const SUSCRIPCION: &str = "aeroalpes-bff-en-vivo";

/// The durable subscription earlier versions of the UI process serving `addr` on `host` made
/// (`aeroalpes-bff-HOST-IP-PORT`): the process deletes it when it starts, so a store or broker
/// an earlier version used stops collecting `ciclo-reserva` for it.
pub fn suscripcion_durable_anterior(host: &str, addr: std::net::SocketAddr) -> String {
    sanitized(&format!(
        "aeroalpes-bff-{host}-{}-{}",
        addr.ip(),
        addr.port()
    ))
}

/// Letters, digits and `-` only: what every broker accepts in a subscription name.
fn sanitized(raw: &str) -> String {
    raw.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// The subscription of the UI process serving `addr` on machine `host`:
/// `aeroalpes-bff-en-vivo-HOST-IP-PORT`, letters, digits and `-` only. Every UI process
/// forwards every event to its own browsers, so each needs a subscription of its own (UI
/// processes sharing one would split the events between them). It is non-durable
/// ([`SubscriptionOptions::durable`](seedwork::messaging::SubscriptionOptions::durable)): an
/// event nobody is connected to see is worth nothing later, so the subscription goes away with
/// the process instead of collecting the topic for good.
pub fn suscripcion_de(host: &str, addr: std::net::SocketAddr) -> String {
    sanitized(&format!(
        "{SUSCRIPCION}-{host}-{}-{}",
        addr.ip(),
        addr.port()
    ))
}
/// Largest websocket message accepted from a browser.
pub const MAX_MESSAGE: usize = 16 * 1024;
/// The client id of reservations made from the page.
pub const CLIENTE_WEB: &str = "cliente-web";

const PAGE: &str = include_str!("index.html");

/// What the BFF's handlers share.
#[derive(Clone)]
pub struct Bff {
    bus: Bus,
    events: broadcast::Sender<String>,
    allowed_origins: Arc<Vec<String>>,
}

impl Bff {
    /// A BFF sending commands through `bus`, accepting websockets from `allowed_origins` (e.g.
    /// `http://127.0.0.1:5678`) or from clients that send no `Origin` (non-browsers).
    pub fn new(bus: Bus, allowed_origins: Vec<String>) -> Self {
        let (events, _) = broadcast::channel(1024);
        Bff {
            bus,
            events,
            allowed_origins: Arc::new(allowed_origins),
        }
    }

    /// The router: `/` (the page) and `/ws`.
    // The BFF's page and websocket are not part of the API's OpenAPI document.
    #[allow(clippy::disallowed_methods)]
    pub fn router(&self) -> Router {
        Router::new()
            .route("/", get(|| async { Html(PAGE) }))
            .route("/ws", get(upgrade))
            .route("/sagas/{id}", get(saga))
            .with_state(self.clone())
    }

    /// Forwards every message of `consumer` (subscribed to `ciclo-reserva`) to the browsers,
    /// until `shutdown`. Messages are acknowledged once handed over; a failed acknowledgement
    /// is logged and the loop goes on (the broker hands the message over again, and a browser
    /// may see it twice). Returns `Err` only when `receive` fails: run it under
    /// [`supervise`](seedwork::supervision::supervise), which subscribes again.
    pub async fn forward(
        self,
        mut consumer: Box<dyn Consumer>,
        shutdown: impl Future<Output = ()>,
    ) -> seedwork::Result<()> {
        tokio::pin!(shutdown);
        loop {
            let delivery = tokio::select! {
                _ = &mut shutdown => return Ok(()),
                delivery = consumer.receive() => delivery?,
            };
            match serde_json::to_string(&delivery.message.envelope) {
                Ok(text) => {
                    // No browser connected is not an error: the event is simply not shown.
                    let _ = self.events.send(text);
                }
                Err(error) => tracing::warn!(%error, "event not forwarded"),
            }
            if let Err(error) = consumer.ack(&delivery).await {
                tracing::warn!(%error, message_id = %delivery.message.envelope.id, "event forwarded but not acknowledged; it will come again");
            }
        }
    }

    fn origin_allowed(&self, headers: &HeaderMap) -> bool {
        match headers.get(header::ORIGIN).map(|o| o.to_str()) {
            None => true,
            Some(Ok(origin)) => self.allowed_origins.iter().any(|a| a == origin),
            Some(Err(_)) => false,
        }
    }
}

async fn upgrade(State(bff): State<Bff>, headers: HeaderMap, ws: WebSocketUpgrade) -> Response {
    if !bff.origin_allowed(&headers) {
        return ApiError::new(StatusCode::FORBIDDEN, "websocket origin not allowed")
            .into_response();
    }
    ws.max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
        .on_upgrade(move |socket| session(bff, socket))
}

/// The saga log of a conversation, as `GET /sagas/{id}` of the API answers it.
async fn saga(State(bff): State<Bff>, id: crate::api::ruta::Id) -> Response {
    let Some(store) = bff.bus.resources().get::<dyn SagaStore>() else {
        return ApiError::new(StatusCode::NOT_FOUND, "no saga runs here").into_response();
    };
    match crate::api::sagas::sagas_of(&store, &id.0).await {
        Ok(sagas) if sagas.is_empty() => ApiError::new(
            StatusCode::NOT_FOUND,
            "no saga follows this conversation yet",
        )
        .into_response(),
        Ok(sagas) => axum::Json(sagas).into_response(),
        Err(error) => ApiError::from(error).into_response(),
    }
}

/// What the page sends: a one-leg reservation request, and optionally the saga step to make
/// fail (the demonstration switch, sent as the conversation's `demo-falla` baggage).
#[derive(Debug, Deserialize)]
struct Solicitud {
    origen: String,
    destino: String,
    #[serde(default)]
    id_cliente: Option<String>,
    #[serde(default)]
    falla: Option<String>,
}

/// The steps the page may make fail.
const FALLAS: [&str; 3] = ["pago", "gds", "aprobacion"];

async fn session(bff: Bff, socket: WebSocket) {
    let (mut sender, mut receiver) = socket.split();
    let mut events = bff.events.subscribe();
    let (replies, mut reply_rx) = tokio::sync::mpsc::channel::<String>(16);
    let writer = tokio::spawn(async move {
        loop {
            let text = tokio::select! {
                event = events.recv() => match event {
                    Ok(text) => text,
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                reply = reply_rx.recv() => match reply {
                    Some(text) => text,
                    None => break,
                },
            };
            if sender.send(WsMessage::Text(text.into())).await.is_err() {
                break;
            }
        }
    });
    while let Some(Ok(message)) = receiver.next().await {
        let reply = match message {
            WsMessage::Text(text) => handle_request(&bff, text.as_str()).await,
            WsMessage::Close(_) => break,
            _ => continue,
        };
        if replies.send(reply.to_string()).await.is_err() {
            break;
        }
    }
    drop(replies);
    writer.abort();
}

async fn handle_request(bff: &Bff, text: &str) -> serde_json::Value {
    let solicitud: Solicitud = match serde_json::from_str(text) {
        Ok(solicitud) => solicitud,
        Err(error) => return json!({"tipo": "error", "error": format!("invalid request: {error}")}),
    };
    if let Some(falla) = solicitud.falla.as_deref().filter(|f| !f.is_empty()) {
        if !FALLAS.contains(&falla) {
            return json!({"tipo": "error", "error": format!("invalid request: `falla` must be one of {FALLAS:?}")});
        }
    }
    let correlacion = uuid::Uuid::new_v4().to_string();
    match send_command(bff, solicitud, &correlacion).await {
        Ok(id_reserva) => {
            json!({"tipo": "aceptado", "id_reserva": id_reserva, "id_correlacion": correlacion})
        }
        Err(error) => json!({"tipo": "error", "error": error.to_string()}),
    }
}

async fn send_command(
    bff: &Bff,
    solicitud: Solicitud,
    correlacion: &str,
) -> seedwork::Result<String> {
    let salida = Utc::now() + Duration::days(1);
    let fecha = |d: chrono::DateTime<Utc>| d.to_rfc3339_opts(SecondsFormat::Secs, true);
    let aeropuerto = |codigo: &str| AeropuertoDto {
        codigo: codigo.to_string(),
        nombre: codigo.to_string(),
    };
    let itinerarios = vec![ItinerarioDto {
        odos: vec![OdoDto {
            segmentos: vec![SegmentoDto {
                legs: vec![LegDto {
                    fecha_salida: fecha(salida),
                    fecha_llegada: fecha(salida + Duration::hours(3)),
                    origen: aeropuerto(&solicitud.origen),
                    destino: aeropuerto(&solicitud.destino),
                }],
            }],
        }],
    }];
    let id = uuid::Uuid::new_v4().to_string();
    let datos = ReservaEntradaDto {
        id: Some(id.clone()),
        id_cliente: Some(
            solicitud
                .id_cliente
                .unwrap_or_else(|| CLIENTE_WEB.to_string()),
        ),
        fecha_creacion: None,
        fecha_actualizacion: None,
        itinerarios,
    };
    let mut contexto = Context::new().correlation_id(correlacion);
    if let Some(falla) = solicitud.falla.filter(|f| !f.is_empty()) {
        contexto = contexto.baggage(DEMO_FALLA, falla);
    }
    bff.bus
        .dispatch_with(SolicitarReserva { id, datos }, contexto)
        .await
}
