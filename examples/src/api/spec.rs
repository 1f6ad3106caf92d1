//! `GET /spec`: the OpenAPI 3 document of every route.

use serde_json::{json, Value};

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    })
}

fn command(summary: &str) -> Value {
    json!({
        "post": {
            "summary": summary,
            "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
            "responses": {
                "202": {"description": "Done", "content": {"application/json": {"schema": {"type": "object"}}}},
                "404": error_response("No such reservation"),
                "409": error_response("Not allowed in the reservation's state, or changed concurrently")
            }
        }
    })
}

fn list(summary: &str) -> Value {
    json!({
        "get": {
            "summary": summary,
            "responses": {"200": {"description": "Reservations", "content": {"application/json": {
                "schema": {"type": "array", "items": {"$ref": "#/components/schemas/Reserva"}}}}}}
        }
    })
}

/// The OpenAPI document.
pub fn openapi() -> Value {
    let body = json!({
        "required": true,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ReservaEntrada"}}}
    });
    let create_async = json!({
        "post": {
            "summary": "Create a reservation asynchronously: the command travels through the broker (comandos-reserva)",
            "requestBody": body,
            "responses": {
                "202": {"description": "Accepted; the Location header names the query URL",
                        "content": {"application/json": {"schema": {"type": "object"}}}},
                "400": error_response("Malformed JSON or a broken business rule"),
                "413": error_response("Body over the limit"),
                "415": error_response("Not JSON"),
                "422": error_response("Missing or mistyped field")
            }
        }
    });
    let get_one = |summary: &str| {
        json!({
            "get": {
                "summary": summary,
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": {
                    "200": {"description": "The reservation", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Reserva"}}}},
                    "404": error_response("No such reservation")
                }
            }
        })
    };
    json!({
        "openapi": "3.0.3",
        "info": {"title": "AlpesPartners", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Flight reservations with CQRS, domain events and integration events (seedwork reference system)."},
        "paths": {
            "/health": {"get": {"summary": "Liveness", "responses": {"200": {"description": "Up",
                "content": {"application/json": {"schema": {"type": "object", "properties": {"status": {"type": "string"}}}}}}}}},
            "/spec": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3"}}}},
            "/vuelos/reserva": {"post": {
                "summary": "Create a reservation synchronously",
                "requestBody": body,
                "responses": {
                    "200": {"description": "The reservation", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Reserva"}}}},
                    "400": error_response("Malformed JSON or a broken business rule"),
                    "409": error_response("A reservation with that id exists"),
                    "413": error_response("Body over the limit"),
                    "415": error_response("Not JSON"),
                    "422": error_response("Missing or mistyped field")
                }
            }},
            "/vuelos/reserva-comando": create_async.clone(),
            "/vuelos/reserva-commando": create_async,
            "/vuelos/reserva/{id}": get_one("A reservation (service path)"),
            "/vuelos/reserva-query/{id}": get_one("A reservation (CQRS query ObtenerReserva)"),
            "/vuelos/reserva/{id}/aprobar": command("Approve (AprobarReserva)"),
            "/vuelos/reserva/{id}/cancelar": command("Cancel (CancelarReserva)"),
            "/vuelos/reserva/{id}/pagar": command("Pay (PagarReserva)"),
            "/vuelos/reservas": list("Every reservation (ObtenerTodasReservas)"),
            "/vuelos/reservas/canceladas": list("Cancelled reservations (ObtenerReservasCanceladas)"),
            "/vuelos/reservas/no-pagadas": list("Reservations not paid yet (ObtenerReservasNoPagadas)"),
            "/clientes/{id}/reservas": {"get": {
                "summary": "The reservation ids of a client (the cliente module's read model)",
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "Ids", "content": {"application/json": {"schema": {"type": "array", "items": {"type": "string"}}}}}}
            }}
        },
        "components": {"schemas": {
            "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
            "Aeropuerto": {"type": "object", "required": ["codigo", "nombre"],
                "properties": {"codigo": {"type": "string"}, "nombre": {"type": "string"}}},
            "Leg": {"type": "object", "required": ["fecha_salida", "fecha_llegada", "origen", "destino"],
                "properties": {"fecha_salida": {"type": "string", "format": "date-time"},
                               "fecha_llegada": {"type": "string", "format": "date-time"},
                               "origen": {"$ref": "#/components/schemas/Aeropuerto"},
                               "destino": {"$ref": "#/components/schemas/Aeropuerto"}}},
            "Segmento": {"type": "object", "required": ["legs"], "properties": {"legs": {"type": "array", "items": {"$ref": "#/components/schemas/Leg"}}}},
            "Odo": {"type": "object", "required": ["segmentos"], "properties": {"segmentos": {"type": "array", "items": {"$ref": "#/components/schemas/Segmento"}}}},
            "Itinerario": {"type": "object", "required": ["odos"], "properties": {"odos": {"type": "array", "items": {"$ref": "#/components/schemas/Odo"}}}},
            "ReservaEntrada": {"type": "object", "required": ["itinerarios"], "properties": {
                "id": {"type": "string"}, "id_cliente": {"type": "string"},
                "fecha_creacion": {"type": "string", "format": "date-time"},
                "fecha_actualizacion": {"type": "string", "format": "date-time"},
                "itinerarios": {"type": "array", "items": {"$ref": "#/components/schemas/Itinerario"}}}},
            "Reserva": {"type": "object", "properties": {
                "id": {"type": "string"}, "id_cliente": {"type": "string"},
                "estado": {"type": "string", "enum": ["Pendiente", "Aprobada", "Pagada", "Cancelada"]},
                "fecha_creacion": {"type": "string"}, "fecha_actualizacion": {"type": "string"},
                "itinerarios": {"type": "array", "items": {"$ref": "#/components/schemas/Itinerario"}}}}
        }}
    })
}
