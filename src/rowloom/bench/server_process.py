"""Child-process entry point: serve one mock provider on 127.0.0.1 until SIGTERM.

`python -m rowloom.bench.server_process '<MockServerOptions as JSON>'` prints
`rowloom-bench-mock <port>` once listening (port chosen by the OS).
"""

from __future__ import annotations

import json
import sys

from rowloom.simulation.server import MockProviderServer, MockServerOptions, serve


def main(argv: list[str] | None = None) -> None:
    """Parse the options argument and serve until signalled."""
    args = sys.argv[1:] if argv is None else argv
    options = MockServerOptions(**json.loads(args[0]))

    def ready(server: MockProviderServer) -> None:
        print(f"rowloom-bench-mock {server.port}", flush=True)

    serve(options, "127.0.0.1", 0, on_ready=ready)


if __name__ == "__main__":
    main()
