"""A Chinese ID-card reader's local service, as the readers' vendors ship it: a helper on the booth
answering HTTP on 127.0.0.1, ``GET /card`` → 200 ``{"name", "id_number"}`` while a card lies on
the reader, 404 while none does; it allows any page to read it (CORS), as those helpers do.

The booth's interface to its device, run here as a process of its own (there is no reader on
this machine): the card "on the reader" is the JSON file named by ``--card`` while it exists.
Every request is counted as a line in ``--log``. Prints its port, then serves until killed.

    python tests/card_reader_service.py --card /tmp/card.json --log /tmp/requests.log
"""

from __future__ import annotations

import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--card", type=Path, required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()

    class Reader(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            with args.log.open("a") as log:
                log.write(f"{self.command} {self.path}\n")
            if self.path != "/card":
                self._answer(404, {"error": "not found"})
            elif args.card.exists():
                self._answer(200, json.loads(args.card.read_text(encoding="utf-8")))
            else:
                self._answer(404, {"error": "no card"})

        def _answer(self, status: int, doc: dict[str, str]) -> None:
            data = json.dumps(doc, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *a: object) -> None:  # noqa: A002 (http.server's name)
            pass

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Reader)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
