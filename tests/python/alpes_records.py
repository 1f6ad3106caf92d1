"""The integration records of the AlpesPartners tutorial, declared as its Python services do.

`Mensaje` is the tutorial's envelope; `EventoIntegracion` and `ComandoIntegracion` extend it, and
the `vuelos` messages (`schema/v1`) extend those. As in the tutorial, none of the fields is
required, so pulsar-client renders each one as a `["null", T]` union.

Note how pulsar-client's `RecordMeta` collects only the fields a class declares itself: the
envelope fields of `Mensaje` never reach the schema of a subclass, so `EventoReservaCreada`
registers just `{"data": ReservaCreadaPayload}`. That is the "wire fact" the Rust adapter
(`seedwork-pulsar`) builds on.

`ComandoCrearReservaPayload` completes the tutorial's TODO (`itinerarios`) so that it matches
the schema derived from the Rust `ComandoCrearReserva` (examples/src/vuelos/infraestructura/
schema/v1.rs) field for field, `null` defaults aside: the
tutorial's `id_usuario` first, then the added fields with a `null` default
(`required_default=True`, which pulsar-client renders as `"default": null` since the default
of a field without one is `None`).

Run `python3 alpes_records.py` to print the schemas pulsar-client renders for these classes.
"""

import json

from pulsar.schema import Array, Long, Record, String


# --- The tutorial's envelope (seedwork/infraestructura/schema/v1/mensajes.py) -----------------

class Mensaje(Record):
    id = String()
    time = Long()
    ingestion = Long()
    specversion = String()
    type = String()
    datacontenttype = String()
    service_name = String()


class EventoIntegracion(Mensaje):
    pass


class ComandoIntegracion(Mensaje):
    pass


# --- vuelos: events (modulos/vuelos/infraestructura/schema/v1/eventos.py) ---------------------

class ReservaCreadaPayload(Record):
    id_reserva = String()
    id_cliente = String()
    estado = String()
    fecha_creacion = Long()


class EventoReservaCreada(EventoIntegracion):
    data = ReservaCreadaPayload()


# --- vuelos: commands (modulos/vuelos/infraestructura/schema/v1/comandos.py) ------------------
# The nested records mirror the DTOs of the HTTP contract (Itinerario > Odo > Segmento > Leg),
# declared before they are used. Their own fields have no defaults (the derived Rust schema gives
# them `null` defaults; the two pass each other's FULL check).

class Aeropuerto(Record):
    codigo = String()
    nombre = String()


class Leg(Record):
    fecha_salida = String()
    fecha_llegada = String()
    origen = Aeropuerto()
    # The second use of a named type is rendered as a reference by name ("Aeropuerto").
    destino = Aeropuerto()


class Segmento(Record):
    legs = Array(Leg())


class Odo(Record):
    segmentos = Array(Segmento())


class Itinerario(Record):
    odos = Array(Odo())


class ComandoCrearReservaPayload(ComandoIntegracion):
    # The tutorial's own field.
    id_usuario = String()
    # The tutorial's TODO, completed: every added field defaults to null, so the schema stays
    # compatible with the tutorial's (FULL compatibility) whichever registers first.
    id_reserva = String(required_default=True)
    fecha_creacion = String(required_default=True)
    fecha_actualizacion = String(required_default=True)
    itinerarios = Array(Itinerario(), required_default=True)


class ComandoCrearReserva(ComandoIntegracion):
    data = ComandoCrearReservaPayload()


def schema_json(record_cls):
    """The Avro schema pulsar-client renders for `record_cls`, as a dict."""
    return record_cls.schema()


def registered_schema_json(record_cls):
    """The exact schema text an `AvroSchema(record_cls)` producer registers, parsed."""
    from pulsar.schema import AvroSchema

    return json.loads(AvroSchema(record_cls).schema_info().schema())


def dump_schemas():
    """Prints one JSON line per wire record: its name and the schema pulsar-client renders."""
    for record_cls in (EventoReservaCreada, ComandoCrearReserva):
        print(json.dumps({"record": record_cls.__name__, "schema": schema_json(record_cls)}))


if __name__ == "__main__":
    dump_schemas()
