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
"""

import logging
import os
import socket
import sys
import threading

from werkzeug.serving import make_server

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)

HOST = "127.0.0.1"


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


def exit_on_stdin_eof() -> None:
    sys.stdin.buffer.read()
    os._exit(0)


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    threading.Thread(target=exit_on_stdin_eof, daemon=True).start()

    app = serialized(DomainDispatcherApplication(create_backend_app))
    server = make_server(HOST, port, app, threaded=True, request_handler=NoDelayHandler)
    port = server.server_port
    os.environ.setdefault("MOTO_PORT", str(port))
    print(f"moto listening on http://{HOST}:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
