"""A throwaway PostgreSQL server on 127.0.0.1, for `personas scale-demo` and the production-profile tests.

Debian's PostgreSQL binaries (`/usr/lib/postgresql/N/bin`), a cluster in a temporary
directory with trust authentication on a free port, stopped and removed afterwards.
initdb refuses to run as root, so as root the cluster belongs to the `postgres` user
(created by the Debian package) or, failing that, to `nobody`.
"""

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dagster_project.processes import free_port

POSTGRES_ROOT = Path("/usr/lib/postgresql")
SUPERUSER = "personas"


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL's bin directory, or None."""
    candidates = sorted(POSTGRES_ROOT.glob("*/bin/initdb"), key=lambda path: int(path.parts[-3]))
    return candidates[-1].parent if candidates else None


def ensure_postgres() -> str | None:
    """Install Debian's PostgreSQL if missing; the reason it is unavailable, or None."""
    if postgres_bin() is not None:
        return None
    if not shutil.which("apt-get") or os.geteuid() != 0:
        return "PostgreSQL is not installed and apt-get cannot install it here (not root or no apt-get)"
    environment = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    try:
        subprocess.run(["apt-get", "update"], check=True, capture_output=True, timeout=600, env=environment)
        subprocess.run(["apt-get", "install", "-y", "postgresql"], check=True, capture_output=True, timeout=1200,
                       env=environment)
    except (OSError, subprocess.SubprocessError) as error:
        detail = (getattr(error, "stderr", b"") or b"").decode(errors="replace")[-500:]
        return f"could not install postgresql with apt-get: {error} {detail}"
    return None if postgres_bin() is not None else f"apt-get install postgresql left no initdb under {POSTGRES_ROOT}"


@dataclass(frozen=True)
class PostgresServer:
    port: int
    data_dir: Path

    def url(self, database: str) -> str:
        """The SQLAlchemy URL the profile takes: Dagster's storage needs the psycopg2 driver named."""
        return f"postgresql+psycopg2://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def libpq_url(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database; its URL."""
        import psycopg2

        connection = psycopg2.connect(self.libpq_url("postgres"))
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f'create database "{name}"')
        finally:
            connection.close()
        return self.url(name)

    def query(self, database: str, sql: str) -> list[tuple]:
        import psycopg2

        connection = psycopg2.connect(self.libpq_url(database))
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql)
                return cursor.fetchall()
        finally:
            connection.close()


def _owner() -> pwd.struct_passwd | None:
    """The unprivileged account to run the server as when we are root; None when we are not root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root with neither a 'postgres' nor a 'nobody' account to own the cluster")


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """Start a fresh cluster, yield it, then stop it and delete its directory."""
    binaries = postgres_bin()
    if binaries is None:
        raise RuntimeError("no PostgreSQL under /usr/lib/postgresql: call ensure_postgres() first")
    owner = _owner()
    data_dir = Path(tempfile.mkdtemp(prefix="personas-pg-"))  # under /tmp, which the owner can traverse
    if owner is not None:
        os.chown(data_dir, owner.pw_uid, owner.pw_gid)
    as_owner = ["runuser", "-u", owner.pw_name, "--"] if owner is not None else []
    port = free_port()

    def run(*command: str) -> None:
        completed = subprocess.run([*as_owner, *command], capture_output=True, text=True, timeout=120)
        if completed.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({completed.returncode}): "
                               f"{completed.stderr[-1500:] or completed.stdout[-1500:]}")

    cluster = data_dir / "cluster"
    try:
        run(str(binaries / "initdb"), "-D", str(cluster), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--no-sync")
        options = f"-p {port} -k {data_dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
        run(str(binaries / "pg_ctl"), "-D", str(cluster), "-o", options, "-l", str(data_dir / "server.log"),
            "-w", "-t", "60", "start")
        try:
            yield PostgresServer(port, data_dir)
        finally:
            run(str(binaries / "pg_ctl"), "-D", str(cluster), "-m", "fast", "-w", "stop")
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
