"""Run `MockProviderServer` in its own process (so the soak's client and server use separate
cores) with every fault knob, including `drop_rate`, which `rowloom mock-server` does not expose.

Usage: `python mock_server_proc.py '{"capacity": 16, "fail_rate": 0.1, ...}'`; prints the base
URL on its first stdout line and serves on 127.0.0.1 until SIGTERM or SIGINT.
"""

from __future__ import annotations

import json
import sys

from rowloom.simulation.server import MockServerOptions, serve


def main() -> None:
    options = MockServerOptions(**{**json.loads(sys.argv[1]), "host": "127.0.0.1", "port": 0})
    serve(options, on_ready=lambda server: print(server.url, flush=True))


if __name__ == "__main__":
    main()
