"""Local services for tests and `make run`: a server is only used once it really listens."""

from __future__ import annotations

import socket

import pytest

from config.localservices import PortTaken, free_port, start_redis


def test_a_server_that_cannot_bind_its_port_is_not_mistaken_for_one_that_did() -> None:
    # given a port another program took after it was found free
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        # when our Redis is started on it, then it is refused (the port answers, but not our server)
        with pytest.raises(PortTaken):
            start_redis(port=port)
        # and without a fixed port another one is used
        service = start_redis()
        try:
            assert service.url != f"redis://127.0.0.1:{port}/0"
            assert service.process.poll() is None
        finally:
            service.stop()
