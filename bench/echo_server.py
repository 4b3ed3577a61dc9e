"""The floor of one extra loopback hop: a trivial grpc.aio server, in its own process, that
answers TF Serving's Predict method with the request's own bytes.

    python -m bench.echo_server        prints `Serving on 127.0.0.1:PORT` when ready
"""
from __future__ import annotations

import asyncio

import grpc


async def _echo(body: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return body


async def main() -> None:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "tensorflow.serving.PredictionService",
        {"Predict": grpc.unary_unary_rpc_method_handler(_echo)}),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"Serving on 127.0.0.1:{port}", flush=True)
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(main())
