//! The UI page in a real headless Chromium, driven over the DevTools protocol: the page loads,
//! connects its websocket, the "Reservar" button is clicked, the command travels through the
//! broker, and the resulting event appears in the page's list.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use alpespartners::system::Database;
use seedwork_tests::system::start;

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser"].iter().find_map(|name| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|candidate| candidate.is_file())
        })
    })
}

/// Kills the browser when the test ends, however it ends.
struct Browser(Child);

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts headless Chromium on `url`; returns it and its DevTools port.
fn launch(url: &str, profile: &std::path::Path) -> (Browser, u16) {
    let binary = chromium().expect("chromium is installed (scripts/ci installs it)");
    let mut child = Command::new(binary)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium starts");
    let stderr = child.stderr.take().expect("stderr");
    let browser = Browser(child);
    // Read stderr to the end on a thread of its own, so Chromium never blocks on a full pipe.
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("DevTools listening on ws://127.0.0.1:").nth(1) {
                let port: Option<u16> = rest.split('/').next().and_then(|p| p.parse().ok());
                let _ = port_tx.send(port);
            }
        }
    });
    match port_rx.recv_timeout(Duration::from_secs(30)) {
        Ok(Some(port)) => (browser, port),
        other => panic!("chromium did not open DevTools: {other:?}"),
    }
}

struct Page {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    next_id: u64,
}

impl Page {
    async fn open(port: u16, url_prefix: &str) -> Page {
        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let target = loop {
            let targets: Vec<Value> = http
                .get(format!("http://127.0.0.1:{port}/json/list"))
                .send()
                .await
                .expect("DevTools answers")
                .json()
                .await
                .expect("JSON");
            if let Some(page) = targets.into_iter().find(|t| {
                t["type"] == "page" && t["url"].as_str().is_some_and(|u| u.starts_with(url_prefix))
            }) {
                break page;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the page never opened"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let ws = target["webSocketDebuggerUrl"]
            .as_str()
            .expect("debugger url");
        let (socket, _) = tokio_tungstenite::connect_async(ws)
            .await
            .expect("DevTools websocket");
        Page { socket, next_id: 0 }
    }

    /// Evaluates `expression` in the page and returns its value.
    async fn eval(&mut self, expression: &str) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let request = json!({
            "id": id,
            "method": "Runtime.evaluate",
            "params": {"expression": expression, "returnByValue": true}
        });
        self.socket
            .send(WsMessage::Text(request.to_string().into()))
            .await
            .expect("send");
        while let Some(message) = self.socket.next().await {
            if let Ok(WsMessage::Text(text)) = message {
                let reply: Value = serde_json::from_str(text.as_str()).expect("JSON");
                if reply["id"] == id {
                    return reply["result"]["result"]["value"].clone();
                }
            }
        }
        panic!("DevTools closed");
    }

    /// Evaluates `expression` until `done` holds for its value.
    async fn wait_for(&mut self, expression: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let value = self.eval(expression).await;
            if done(&value) {
                return value;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "`{expression}` never got there; last value {value}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium: apt-get install chromium (scripts/ci installs it)"]
async fn the_page_sends_a_reservation_and_shows_its_event() {
    let running = start(Database::Memory).await;
    let profile = tempfile::tempdir().expect("profile dir");
    let url = format!("{}/", running.ui);
    let (_browser, port) = launch(&url, profile.path());
    let mut page = Page::open(port, &url).await;

    page.wait_for("document.getElementById('estado').textContent", |v| {
        v == "Conectado"
    })
    .await;
    page.eval("document.getElementById('origen').value = 'MDE'")
        .await;
    page.eval("document.getElementById('destino').value = 'CTG'")
        .await;
    page.eval("document.querySelector('#reserva button').click()")
        .await;

    let estado = page
        .wait_for("document.getElementById('estado').textContent", |v| {
            v.as_str().is_some_and(|s| s.starts_with("Comando enviado"))
        })
        .await;
    let id = estado
        .as_str()
        .and_then(|s| s.rsplit(' ').next())
        .expect("the reservation id")
        .to_string();
    let events = page
        .wait_for(
            "Array.from(document.querySelectorAll('li.evento')).map(li => li.textContent).join('\\n')",
            |v| v.as_str().is_some_and(|s| s.contains(&id)),
        )
        .await;
    assert!(
        events
            .as_str()
            .unwrap_or_default()
            .contains("EventoReservaCreada"),
        "{events}"
    );
    let stored = running
        .http
        .get(format!("{}/vuelos/reserva-query/{id}", running.api))
        .send()
        .await
        .expect("query");
    assert_eq!(stored.status(), reqwest::StatusCode::OK);
    running.system.shutdown().await;
}

/// The page follows a reservation's saga: without a failure it ends completed; asked to fail
/// the GDS step, it shows the payment given back and the reservation cancelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium: apt-get install chromium (scripts/ci installs it)"]
async fn the_page_shows_the_saga_progressing_and_compensating() {
    let running = seedwork_tests::system::start_with_saga(
        Database::Memory,
        alpespartners::system::BrokerChoice::Memory,
        Duration::from_secs(30),
    )
    .await;
    let profile = tempfile::tempdir().expect("profile dir");
    let url = format!("{}/", running.ui);
    let (_browser, port) = launch(&url, profile.path());
    let mut page = Page::open(port, &url).await;
    page.wait_for("document.getElementById('estado').textContent", |v| {
        v == "Conectado"
    })
    .await;
    let steps = "Array.from(document.querySelectorAll('#saga li')).map(li => li.dataset.paso + ' ' + li.dataset.kind).join(',')";
    let status = "document.getElementById('saga-estado').dataset.status";

    for (falla, final_status, last) in [
        ("", "completed", "aprobacion completed"),
        ("gds", "compensated", "reserva aborted"),
    ] {
        page.eval(&format!(
            "document.getElementById('falla').value = '{falla}'"
        ))
        .await;
        page.eval("document.querySelector('#reserva button').click()")
            .await;
        let estado = page
            .wait_for("document.getElementById('estado').textContent", |v| {
                v.as_str().is_some_and(|s| s.starts_with("Comando enviado"))
            })
            .await;
        page.wait_for(status, |v| v == final_status).await;
        let shown = page.eval(steps).await;
        let shown = shown.as_str().unwrap_or_default();
        assert!(shown.ends_with(last), "{falla:?}: {shown}");
        if falla == "gds" {
            assert!(
                shown.contains("gds failed,pago compensation_sent,pago compensated,reserva compensation_sent,reserva compensated"),
                "{shown}"
            );
        }
        let id = estado
            .as_str()
            .and_then(|s| s.rsplit(' ').next())
            .expect("the reservation id")
            .to_string();
        let stored: Value = running
            .http
            .get(format!("{}/vuelos/reserva-query/{id}", running.api))
            .send()
            .await
            .expect("query")
            .json()
            .await
            .expect("JSON");
        let expected = if falla.is_empty() {
            "Aprobada"
        } else {
            "Cancelada"
        };
        assert_eq!(stored["estado"], expected, "{falla:?}: {stored}");
        // The next round starts from a different status text.
        page.eval("document.getElementById('estado').textContent = ''")
            .await;
    }
    running.system.shutdown().await;
}
