#!/usr/bin/env python3
"""The tutorial's Python services, reduced to what tests/tests/python_interop.rs drives.

Each subcommand talks to a real Pulsar broker with the official `pulsar-client` and the
tutorial's record classes (alpes_records.py), and prints machine-readable JSON lines on stdout
(one per message; logs go to stderr). It exits non-zero on failure or timeout.

  consume-events   the `notificaciones` consumer: Avro-decodes `EventoReservaCreada` values
  produce-command  a Python service sending `ComandoCrearReserva`
  ui-decode        the original UI (BFF): schema from the registry, fastavro schemaless_reader
  register-schema  registers the Python schema of a topic first (a producer, then closes it)
  python-schema    prints the schemas pulsar-client registers for the records

Consumers print `{"ready": true}` once subscribed: a new subscription only sees messages
published after it exists, so the caller publishes after that line.
"""

import argparse
import io
import json
import logging
import os
import sys
import time
import urllib.request

import pulsar
from pulsar.schema import AvroSchema, Record

import alpes_records
from alpes_records import ComandoCrearReserva, ComandoCrearReservaPayload, EventoReservaCreada

RECORDS = {
    "EventoReservaCreada": EventoReservaCreada,
    "ComandoCrearReserva": ComandoCrearReserva,
}

log = logging.getLogger("interop")

# Where the JSON lines go: the real stdout. `main` points file descriptor 1 at stderr, so that
# whatever the C++ client prints (its console logger writes to stdout) cannot end up among them.
_out = sys.stdout


def emit(obj):
    """One JSON line on stdout, flushed at once (the caller waits for it)."""
    _out.write(json.dumps(obj, sort_keys=True) + "\n")
    _out.flush()


def to_plain(value):
    """A decoded pulsar-client `Record` (or list, dict) as plain JSON-able values."""
    if isinstance(value, Record):
        return {name: to_plain(getattr(value, name)) for name in value._fields}
    if isinstance(value, list):
        return [to_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: to_plain(item) for key, item in value.items()}
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def client(args):
    # The C++ console logger, not a Python `logging.Logger`: with a Python logger the process
    # sometimes aborts at exit ("terminate called without an active exception",
    # apache/pulsar-client-python#256), and falls back to logging on stdout while the
    # interpreter shuts down (#194).
    return pulsar.Client(
        args.url,
        operation_timeout_seconds=15,
        connection_timeout_ms=5000,
        logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Warn),
    )


def receive_loop(consumer, count, timeout, handle):
    """Receives `count` messages within `timeout` seconds, handing each to `handle`."""
    deadline = time.monotonic() + timeout
    received = 0
    while received < count:
        remaining_ms = int((deadline - time.monotonic()) * 1000)
        if remaining_ms <= 0:
            raise TimeoutError(f"received {received} of {count} messages within {timeout}s")
        try:
            msg = consumer.receive(timeout_millis=remaining_ms)
        except pulsar.Timeout:
            continue
        handle(msg)
        consumer.acknowledge(msg)
        received += 1


def message_metadata(msg):
    return {
        "properties": dict(msg.properties()),
        "key": msg.partition_key() or None,
        "message_id": str(msg.message_id()),
    }


def consume_events(args):
    c = client(args)
    try:
        consumer = c.subscribe(
            args.topic,
            args.subscription,
            consumer_type=pulsar.ConsumerType.Shared,
            schema=AvroSchema(EventoReservaCreada),
        )
        emit({"ready": True})

        def handle(msg):
            value = msg.value()
            if not isinstance(value, EventoReservaCreada):
                raise TypeError(f"decoded a {type(value).__name__}, not EventoReservaCreada")
            line = {"data": to_plain(value.data), "record": type(value).__name__}
            line.update(message_metadata(msg))
            emit(line)

        receive_loop(consumer, args.count, args.timeout, handle)
        consumer.close()
    finally:
        c.close()


def produce_command(args):
    payload = json.loads(args.json)
    command = ComandoCrearReserva(data=ComandoCrearReservaPayload(**payload))
    c = client(args)
    try:
        producer = c.create_producer(args.topic, schema=AvroSchema(ComandoCrearReserva))
        kwargs = {}
        if args.key:
            kwargs["partition_key"] = args.key
        message_id = producer.send(command, **kwargs)
        producer.flush()
        producer.close()
        emit({"sent": True, "message_id": str(message_id)})
    finally:
        c.close()


def registry_schema(admin, topic):
    """What the original UI did: the topic's latest schema from the broker's registry."""
    url = f"{admin.rstrip('/')}/admin/v2/schemas/public/default/{topic}/schema"
    with urllib.request.urlopen(url, timeout=10) as resp:
        body = json.loads(resp.read().decode("utf-8"))
    return body


def ui_decode(args):
    import fastavro

    registered = registry_schema(args.admin, args.topic)
    if registered.get("type") != "AVRO":
        raise ValueError(f"the registry holds a {registered.get('type')} schema, not AVRO")
    parsed_schema = fastavro.parse_schema(json.loads(registered["data"]))
    c = client(args)
    try:
        # No schema: the UI reads raw bytes and decodes them itself.
        consumer = c.subscribe(
            args.topic, args.subscription, consumer_type=pulsar.ConsumerType.Shared
        )
        emit({"ready": True, "schema_version": registered.get("version")})

        def handle(msg):
            # On a topic carrying several types (a union of records), fastavro names the
            # record each value was written as: `[name, record]`. A union with one record
            # (["null", Payload]) reads as the record alone, as the original UI printed it.
            record = fastavro.schemaless_reader(
                io.BytesIO(msg.data()),
                parsed_schema,
                return_record_name=True,
                return_record_name_override=True,
            )
            line = {"record": record}
            line.update(message_metadata(msg))
            emit(line)

        receive_loop(consumer, args.count, args.timeout, handle)
        consumer.close()
    finally:
        c.close()


def register_schema(args):
    record_cls = RECORDS[args.record]
    c = client(args)
    try:
        producer = c.create_producer(args.topic, schema=AvroSchema(record_cls))
        producer.close()
        emit({"registered": True, "record": args.record})
    finally:
        c.close()


def python_schema(args):
    names = [args.record] if args.record else list(RECORDS)
    for name in names:
        emit({"record": name, "schema": alpes_records.registered_schema_json(RECORDS[name])})


def parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    def command(name, needs_topic=True):
        s = sub.add_parser(name)
        s.add_argument(
            "--url", default=os.environ.get("SEEDWORK_PULSAR_URL", "pulsar://127.0.0.1:6650")
        )
        s.add_argument("--topic", required=needs_topic)
        return s

    s = command("consume-events")
    s.add_argument("--subscription", required=True)
    s.add_argument("--count", type=int, default=1)
    s.add_argument("--timeout", type=float, default=30.0)
    s.set_defaults(run=consume_events)

    s = command("produce-command")
    s.add_argument("--json", required=True, help="the ComandoCrearReservaPayload fields as JSON")
    s.add_argument("--key", help="partition key")
    s.set_defaults(run=produce_command)

    s = command("ui-decode")
    s.add_argument(
        "--admin", default=os.environ.get("SEEDWORK_PULSAR_ADMIN", "http://127.0.0.1:8080")
    )
    s.add_argument("--subscription", required=True)
    s.add_argument("--count", type=int, default=1)
    s.add_argument("--timeout", type=float, default=30.0)
    s.set_defaults(run=ui_decode)

    s = command("register-schema")
    s.add_argument("--record", choices=sorted(RECORDS), default="EventoReservaCreada")
    s.set_defaults(run=register_schema)

    s = command("python-schema", needs_topic=False)
    s.add_argument("--record", choices=sorted(RECORDS))
    s.set_defaults(run=python_schema)
    return p


def main(argv=None):
    global _out
    logging.basicConfig(
        stream=sys.stderr,
        level=os.environ.get("INTEROP_LOG", "WARNING"),
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    args = parser().parse_args(argv)
    # Keep the real stdout for the JSON lines; everything else written to fd 1 goes to stderr.
    sys.stdout.flush()
    _out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    try:
        args.run(args)
    except Exception as error:  # noqa: BLE001 - report any failure as a non-zero exit
        log.error("%s failed: %s: %s", args.command, type(error).__name__, error)
        return 1
    return 0


if __name__ == "__main__":
    code = main()
    _out.flush()
    sys.stderr.flush()
    # Skip the interpreter's and the C++ client's teardown: its destructors may abort the
    # process after the work is done (apache/pulsar-client-python#256).
    os._exit(code)
