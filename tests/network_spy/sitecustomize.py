"""Loaded by every Python process started with this folder on PYTHONPATH (the CLI, dbt, MLflow's workers):
writes each host name looked up and each address connected to, other than this machine's, to the file
named by PERSONAS_NETWORK_LOG, one line each, so a test can assert that a run calls nobody."""

import os
import socket

_LOG = os.environ.get("PERSONAS_NETWORK_LOG")
_LOCAL = {None, "", "localhost", "127.0.0.1", "::1", "0.0.0.0"}


def _record(what: str) -> None:
    with open(_LOG, "a") as log:
        log.write(f"{os.getpid()} {what}\n")


if _LOG:
    _getaddrinfo = socket.getaddrinfo
    _connect = socket.socket.connect

    def getaddrinfo(host, *args, **kwargs):
        if (host.decode() if isinstance(host, bytes) else host) not in _LOCAL:
            _record(f"lookup {host}")
        return _getaddrinfo(host, *args, **kwargs)

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in _LOCAL:
            _record(f"connect {address}")
        return _connect(self, address)

    socket.getaddrinfo = getaddrinfo
    socket.socket.connect = connect
