//! Starting the reference system in-process for tests, on free ports.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alpespartners::notificaciones::{EnviadorCorreo, Notificacion};
use alpespartners::system::{self, BrokerChoice, Config, Database, Services, System};

/// Records the notifications instead of printing them.
#[derive(Clone, Default)]
pub struct Buzon(Arc<Mutex<Vec<Notificacion>>>);

impl Buzon {
    /// Everything sent so far.
    pub fn enviados(&self) -> Vec<Notificacion> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Notifications about `id_reserva`.
    pub fn de(&self, id_reserva: &str) -> Vec<Notificacion> {
        self.enviados()
            .into_iter()
            .filter(|n| n.id_reserva == id_reserva)
            .collect()
    }
}

#[seedwork::async_trait]
impl EnviadorCorreo for Buzon {
    async fn enviar(&self, notificacion: &Notificacion) -> seedwork::Result<()> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(notificacion.clone());
        Ok(())
    }
}

/// A running system and what the tests observe it with.
pub struct Running {
    /// The system.
    pub system: System,
    /// The notifications it sent.
    pub buzon: Buzon,
    /// `http://127.0.0.1:PORT` of the API.
    pub api: String,
    /// `ws://127.0.0.1:PORT/ws` of the UI BFF.
    pub ws: String,
    /// `http://127.0.0.1:PORT` of the UI BFF.
    pub ui: String,
    /// An HTTP client.
    pub http: reqwest::Client,
    /// Where its data lives.
    pub database: Database,
}

/// Starts the whole system on `database` and the in-memory broker (so tests can inspect its
/// topics), on free ports of 127.0.0.1.
pub async fn start(database: Database) -> Running {
    start_on(database, BrokerChoice::Memory).await
}

/// Starts the whole system on `database` and `broker`, on free ports of 127.0.0.1, without the
/// reservation saga: reservations wait for approval by hand, as the tests of the tutorial's
/// API expect ([`start_with_saga`] runs it).
pub async fn start_on(database: Database, broker: BrokerChoice) -> Running {
    start_configured(database, broker, false, Duration::from_secs(30)).await
}

/// Starts the whole system with the reservation saga, each step waiting at most `plazo`.
pub async fn start_with_saga(database: Database, broker: BrokerChoice, plazo: Duration) -> Running {
    start_configured(database, broker, true, plazo).await
}

async fn start_configured(
    database: Database,
    broker: BrokerChoice,
    sagas: bool,
    plazo_saga: Duration,
) -> Running {
    let buzon = Buzon::default();
    let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
    let config = Config {
        http: any_port,
        ui: any_port,
        database: database.clone(),
        correo: Arc::new(buzon.clone()),
        relay_poll: Duration::from_millis(20),
        broker,
        services: Services::ALL,
        sagas,
        plazo_saga,
        sondeo_plazos: Duration::from_millis(50),
        sondeo_proyecciones: Duration::from_millis(20),
        reconstruir_proyecciones: false,
    };
    let system = system::start(config).await.expect("the system starts");
    Running {
        database,
        api: format!("http://{}", system.http_addr.expect("the API runs")),
        ws: format!("ws://{}/ws", system.ui_addr.expect("the UI runs")),
        ui: format!("http://{}", system.ui_addr.expect("the UI runs")),
        system,
        buzon,
        http: reqwest::Client::new(),
    }
}

/// The README's request body, with another id.
pub fn reserva_del_readme(id: &str) -> serde_json::Value {
    serde_json::json!({
        "fecha_creacion": "2025-09-03T12:00:00Z",
        "fecha_actualizacion": "2025-09-03T12:00:00Z",
        "id": id,
        "itinerarios": [{"odos": [{"segmentos": [{"legs": [{
            "fecha_salida": "2022-11-22T13:10:00Z",
            "fecha_llegada": "2022-11-22T15:10:00Z",
            "destino": {"codigo": "sasads", "nombre": "John F. Kennedy International Airport"},
            "origen": {"codigo": "gggg", "nombre": "El Dorado - Bogotá International Airport (BOG)"}
        }]}]}]}]
    })
}

/// Waits until every projection of the API at `api` has applied every stored event (the list
/// and totals queries read their read models), polling `GET /proyecciones`; panics after
/// `within`.
pub async fn projections_caught_up(http: &reqwest::Client, api: &str, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let estado: Option<serde_json::Value> =
            match http.get(format!("{api}/proyecciones")).send().await {
                Ok(response) if response.status().is_success() => response.json().await.ok(),
                _ => None,
            };
        let al_dia = estado
            .as_ref()
            .and_then(|e| e.as_array())
            .is_some_and(|proyecciones| {
                !proyecciones.is_empty() && proyecciones.iter().all(|p| p["al_dia"] == true)
            });
        if al_dia {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the projections did not catch up within {within:?}: {estado:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
