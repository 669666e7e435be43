"""Local AWS emulator for the integration tests: moto's server app, made safe and fast.

Usage: moto_server.py PORT   (PORT 0 picks a free port; the ready line names it)

Differences from `python -m moto.server`, and why:
- Every call of the WSGI app runs under one lock. moto's backends are not
  thread-safe, and two racing DynamoDB conditional writes must never both succeed.
  (So an SQS long poll, WaitTimeSeconds > 0, would stall everyone: poll with 0.)
- TCP_NODELAY on every connection. moto's handler writes headers and body in
  separate small sends; with Nagle on, the client's delayed ACK adds ~40 ms a call.
- Exits by itself when stdin reaches EOF, so it never outlives the test process
  that spawned it (that process holds the pipe's write end until it dies).
- Quiet: no per-request log lines.
- Records every AWS call it serves, as IAM would judge it: the caller's access key ID
  (from the SigV4 `Authorization` header's `Credential=`), the service (the credential
  scope's), the operation (`X-Amz-Target`, else the form's or query's `Action`) and
  the resources the request names (a DynamoDB transaction's or batch's one per inner
  item, with the item's kind). `GET /_qdn/calls` answers them as JSON, oldest first,
  so a test can compare what each function called with what its IAM role grants.
"""

import io
import json
import logging
import os
import re
import socket
import sys
import threading
import urllib.parse

from werkzeug.serving import make_server

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)

HOST = "127.0.0.1"
CALLS_PATH = "/_qdn/calls"
CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/[^/]+/[^/]+/([^/,\s]+)/aws4_request")


class NoDelayHandler(MotoRequestHandler):
    """moto's handler with Nagle's algorithm off and no access log."""

    disable_nagle_algorithm = True  # honoured by socketserver.StreamRequestHandler.setup

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_request(self, *args, **kwargs) -> None:
        pass


def serialized(app):
    """Wraps a WSGI app so that one request at a time runs it, body included."""
    lock = threading.Lock()

    def call(environ, start_response):
        with lock:
            result = app(environ, start_response)
            try:
                body = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        return [body]

    return call


def request_targets(operation: str, params: dict) -> list:
    """The resources a request names, each `{"kind", "resource"}`: one per inner item
    of a DynamoDB transaction (`kind` Put, Update, Delete, ConditionCheck or Get) or
    batch (`kind` null), else the request's one table, queue, topic or secret."""
    if operation in ("TransactWriteItems", "TransactGetItems"):
        targets = []
        for item in params.get("TransactItems") or []:
            for kind, inner in item.items():
                targets.append({"kind": kind, "resource": inner.get("TableName")})
        return targets
    if operation in ("BatchGetItem", "BatchWriteItem"):
        tables = params.get("RequestItems") or {}
        return [{"kind": None, "resource": table} for table in tables]
    for name in ("TableName", "QueueUrl", "TopicArn", "TargetArn", "SecretId"):
        if params.get(name):
            return [{"kind": None, "resource": params[name]}]
    return [{"kind": None, "resource": None}]


def recorded_call(environ, body: bytes):
    """What IAM would authorise for one request, or None when it is not a signed AWS
    call (moto's own pages)."""
    credential = CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    if credential is None:
        return None
    access_key, service = credential.groups()
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    params: dict = {}
    if target:
        operation = target.rsplit(".", 1)[-1]
        try:
            parsed = json.loads(body or b"{}")
            params = parsed if isinstance(parsed, dict) else {}
        except ValueError:
            params = {}
    else:
        form = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
            form.update(urllib.parse.parse_qs(body.decode("utf-8", "replace")))
        params = {name: values[0] for name, values in form.items()}
        operation = params.get("Action", "")
    return {
        "access_key": access_key,
        "service": service,
        "operation": operation,
        "targets": request_targets(operation, params),
    }


def recording(app):
    """Wraps a WSGI app: records each AWS call before the app serves it, and answers
    `GET /_qdn/calls` itself. Runs inside `serialized`, so the record needs no lock of
    its own and lists calls in the order moto served them."""
    calls = []

    def call(environ, start_response):
        if environ.get("PATH_INFO") == CALLS_PATH and environ.get("REQUEST_METHOD") == "GET":
            payload = json.dumps(calls).encode()
            start_response(
                "200 OK",
                [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))],
            )
            return [payload]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        # moto reads the body again.
        environ["wsgi.input"] = io.BytesIO(body)
        record = recorded_call(environ, body)
        if record is not None:
            calls.append(record)
        return app(environ, start_response)

    return call


def exit_on_stdin_eof() -> None:
    sys.stdin.buffer.read()
    os._exit(0)


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    threading.Thread(target=exit_on_stdin_eof, daemon=True).start()

    app = serialized(recording(DomainDispatcherApplication(create_backend_app)))
    server = make_server(HOST, port, app, threaded=True, request_handler=NoDelayHandler)
    port = server.server_port
    os.environ.setdefault("MOTO_PORT", str(port))
    print(f"moto listening on http://{HOST}:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
