"""A misbehaving shadow for the e2e tier: answers every request after a delay, with a status.

`python -m tests.e2e.faulty_server --port P --delay 2 --status 200` is the "shadow that
sleeps two seconds"; `--status 500` the one that fails. It speaks just enough HTTP/1.1
(reads the declared body, answers with Content-Length) and holds each request on its own
task, so a slow answer never slows the next request's arrival.
"""

from __future__ import annotations

import argparse
import asyncio
from http import HTTPStatus


async def serve(port: int, delay: float, status: int) -> None:
    reason = HTTPStatus(status).phrase

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                await asyncio.sleep(delay)
                body = b'{"error": "faulty shadow"}' if status >= 400 else b"{}"
                writer.write(
                    f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
                    f"content-length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--status", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.delay, args.status))


if __name__ == "__main__":
    main()
