"""Child processes: stopping one the same way everywhere (ask, wait, then insist), a free port for a server, and
spawned workers that exit quickly."""

import gc
import os
import signal
import socket
import subprocess


def stop_process(process: subprocess.Popen, group: bool = False, timeout: float = 15) -> None:
    """Terminate `process` (and its process group when it was started with start_new_session); kill it if it
    has not ended after `timeout` seconds."""
    def send(sig: int) -> None:
        try:
            os.killpg(process.pid, sig) if group else process.send_signal(sig)
        except ProcessLookupError:
            pass

    if process.poll() is None:
        send(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            send(signal.SIGKILL)
            process.wait(timeout=5)
    elif group:
        send(signal.SIGTERM)  # a child (the webserver's code server) may outlive its parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now, for a server child to bind."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def freeze_imports() -> None:
    """For a spawned worker once its modules are imported: every object alive now (modules, classes, functions)
    leaves the garbage collector's reach, so its collections and the interpreter's exit no longer walk them.
    A worker that had imported MLflow, Polars and scikit-learn took 1.0 s to exit, 0.24 s frozen."""
    gc.freeze()
