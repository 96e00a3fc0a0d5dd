"""A minimal HTTP/1.1 keep-alive load client on asyncio streams. httpx spends more CPU per
request than the service under test, which on a 2-core machine would measure the client."""

import asyncio


async def post_all(port: int, path: str, content_type: str, bodies_per_client: list[list[bytes]],
                   authorization: str) -> list[int]:
    """Each client posts its bodies in order on one connection; returns every status code."""
    statuses: list[int] = []

    async def client(bodies: list[bytes]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for body in bodies:
            writer.write(
                f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
                f"Authorization: {authorization}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n".encode() + body
            )
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            statuses.append(int(status_line.split()[1]))
        writer.close()
        await writer.wait_closed()

    await asyncio.gather(*(client(bodies) for bodies in bodies_per_client))
    return statuses
