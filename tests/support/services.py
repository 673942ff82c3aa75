"""pytest plugin: real Redis and PostgreSQL servers for the tests that need them, on any machine.

The rule, for each service:

1. **Use the machine's server** when it answers on its usual address (a socket connect with a 0.3 s timeout, then a
   real ``PING`` / ``SELECT 1``): Redis on 127.0.0.1:6379, PostgreSQL on 127.0.0.1:5432 as user ``postgres`` with
   trust auth.
2. **Otherwise start a throwaway server** from local binaries on a free port under a temporary directory, and stop
   it at the end of the session: ``redis-server``, or PostgreSQL's ``initdb`` + ``pg_ctl`` (run as the ``postgres``
   user through ``runuser``/``setpriv`` when we are root, because ``pg_ctl`` refuses to run as root).
3. **Otherwise skip** the tests that need the service, with a reason that says so — **except under CI** (environment
   variable ``CI`` set to ``true`` or ``1``), where a missing service **fails** those tests: a CI run must never turn
   green by skipping them. :func:`require_service` implements this last step for any fixture, and two hooks make it
   hold for every other skip as well: under CI any skipped test or skipped module is reported as failed, unless the
   test is marked ``ci_may_skip(reason)``.

A "test services" section at the end of the run says which server each service used, or why it was missing.

Fixtures:

* ``redis_url`` (session): ``redis://host:port/<db>`` — a database other than 0 claimed for this session (15 first,
  then 14, ... if a live concurrent session holds it) and flushed when claimed.
* ``throwaway_redis`` (function): a private ``redis-server`` that the test may ``.stop()`` and ``.start()`` again on
  the same port (``.url``); never the machine's shared server.
* ``postgres_admin_dsn`` (session): the server's superuser DSN (``postgresql://postgres@host:port/postgres``), for
  tests that create roles.
* ``postgres_url`` (session): ``postgresql+asyncpg://postgres@host:port/umcp_test_<random>``, a fresh database created
  for this session and dropped at its end.

Tests that use these fixtures are marked ``redis`` / ``postgres`` automatically (``-m "not postgres"`` works).

Environment knobs: ``UNIVERSE_MCP_TEST_REDIS`` / ``UNIVERSE_MCP_TEST_POSTGRES`` (``host:port`` of the server to try
first), ``UNIVERSE_MCP_TEST_THROWAWAY=1`` (ignore the machine's servers and always start throwaway ones),
``UNIVERSE_MCP_TEST_PG_BINDIR`` (where ``initdb``/``pg_ctl`` live).

Load it from the root conftest with ``pytest_plugins = ["tests.support.services"]``, or ``-p tests.support.services``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Coroutine, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import pytest

if TYPE_CHECKING:
    import pluggy

__all__ = [
    "PostgresServer",
    "RedisServer",
    "ThrowawayPostgres",
    "ThrowawayRedis",
    "ci_requires_services",
    "free_port",
    "require_service",
]

T = TypeVar("T")

CONNECT_TIMEOUT_S = 0.3
REDIS_DEFAULT = ("127.0.0.1", 6379)
POSTGRES_DEFAULT = ("127.0.0.1", 5432)
POSTGRES_SUPERUSER = "postgres"

# A key in each Redis database a session claims, holding "<hostname>:<pid>:<token>".
REDIS_CLAIM_KEY = "umcp:test:session-claim"
# Only a safety net for claims of crashed sessions on other hosts; dead local pids are reclaimed at once.
REDIS_CLAIM_TTL_S = 6 * 3600

_REPORT = pytest.StashKey[dict[str, str]]()


# ---------------------------------------------------------------------------------------------------------------
# The CI rule
# ---------------------------------------------------------------------------------------------------------------


def ci_requires_services() -> bool:
    """True when ``CI`` is ``true`` or ``1``: missing services must then fail tests, never skip them."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1"}


def require_service(name: str, reason: str) -> NoReturn:
    """Give up on service ``name``: fail the test under CI, skip it loudly anywhere else."""
    if ci_requires_services():
        pytest.fail(f"{name} is required because CI is set, but it is unavailable: {reason}", pytrace=False)
    pytest.skip(f"SERVICE UNAVAILABLE: {name}: {reason} (under CI=true this test would fail)")


# Under CI every service, the browser and the toolchains are installed (.ci/run): a skip there can only mean a test
# that quietly did not run. So no skip counts as a pass under CI, wherever it comes from: require_service, a plain
# pytest.skip in some test's own fixture, a module-level importorskip (collection). The one way out is an explicit
# ``@pytest.mark.ci_may_skip("why")`` on the test.
CI_MAY_SKIP = "ci_may_skip"


def _skip_reason(longrepr: Any) -> str:
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pluggy.Result[pytest.TestReport], None]:
    outcome = yield
    report = outcome.get_result()
    if not (report.skipped and ci_requires_services()) or hasattr(report, "wasxfail"):
        return
    if item.get_closest_marker(CI_MAY_SKIP) is not None:
        return
    report.outcome = "failed"
    report.longrepr = (
        f"{item.nodeid} was skipped, and under CI=true no test may skip (tests/support/services.py, the CI rule): "
        f"{_skip_reason(report.longrepr)}"
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pluggy.Result[pytest.CollectReport], None]:
    outcome = yield
    report = outcome.get_result()
    if report.outcome == "skipped" and ci_requires_services():
        report.outcome = "failed"
        report.longrepr = (
            f"{collector.nodeid} was skipped while collecting (a module-level skip or importorskip), and under "
            f"CI=true no test may skip: {_skip_reason(report.longrepr)}"
        )


def _report(config: pytest.Config, service: str, line: str) -> None:
    config.stash.setdefault(_REPORT, {})[service] = line


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    report = config.stash.get(_REPORT, None)
    if report:
        terminalreporter.section("test services")
        for service, line in sorted(report.items()):
            terminalreporter.write_line(f"{service}: {line}")


def pytest_configure(config: pytest.Config) -> None:
    # Registered here too, so the plugin works (with --strict-markers) in a project that does not declare them.
    config.addinivalue_line("markers", "redis: needs a Redis server (the machine's, or a throwaway one)")
    config.addinivalue_line("markers", "postgres: needs a PostgreSQL server (the machine's, or a throwaway one)")
    config.addinivalue_line("markers", f"{CI_MAY_SKIP}(reason): this test may skip even under CI=true (say why)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & {"redis_url", "throwaway_redis", "redis_server"}:
            item.add_marker(pytest.mark.redis)
        if names & {"postgres_url", "postgres_admin_dsn", "postgres_server"}:
            item.add_marker(pytest.mark.postgres)


# ---------------------------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _tcp_open(host: str, port: int, timeout_s: float = CONNECT_TIMEOUT_S) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def _run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, even if an event loop is running in this thread."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _address(env_var: str, default: tuple[str, int]) -> tuple[str, int]:
    raw = os.environ.get(env_var, "").strip()
    if not raw:
        return default
    host, _, port = raw.rpartition(":")
    return (host or default[0]), int(port)


def _force_throwaway() -> bool:
    return os.environ.get("UNIVERSE_MCP_TEST_THROWAWAY", "").strip().lower() in {"1", "true", "yes"}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# ---------------------------------------------------------------------------------------------------------------
# Redis
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RedisServer:
    host: str
    port: int
    origin: str  # "machine" or "throwaway"


def _redis_ping(host: str, port: int) -> str | None:
    """None if a Redis server answers PING at host:port, else why not."""
    if not _tcp_open(host, port):
        return f"nothing accepts connections on {host}:{port}"
    import redis

    try:
        with redis.Redis(host=host, port=port, socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=2) as client:
            client.ping()
    except redis.RedisError as exc:
        return f"{host}:{port} accepts connections but PING failed ({type(exc).__name__}: {exc})"
    return None


def find_redis_server() -> str | None:
    """Path of a local ``redis-server`` binary, or None."""
    found = shutil.which("redis-server")
    if found:
        return found
    for candidate in ("/usr/bin/redis-server", "/usr/local/bin/redis-server", "/opt/homebrew/bin/redis-server"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


class ThrowawayRedis:
    """A private ``redis-server`` on a fixed free port, without persistence, that can be stopped and restarted."""

    def __init__(self, binary: str, workdir: Path, port: int | None = None, host: str = "127.0.0.1") -> None:
        self.binary = binary
        self.workdir = workdir
        self.host = host
        self.port = port or free_port(host)
        self.log_path = workdir / f"redis-{self.port}.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout_s: float = 10.0) -> None:
        """Start the server (on the same port as before) and wait until it answers PING."""
        if self.running:
            return
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", self.host,
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.workdir),
            "--daemonize", "no",
            "--loglevel", "warning",
            "--logfile", str(self.log_path),
        ]  # fmt: skip
        self._proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                raise RuntimeError(f"redis-server exited with {self._proc.returncode}: {err}{_tail(self.log_path)}")
            if _redis_ping(self.host, self.port) is None:
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server did not answer on {self.host}:{self.port} within {timeout_s} s")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 5 s). Data is not kept: there is no persistence."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        if proc.stderr:
            proc.stderr.close()


def _claim_redis_db(host: str, port: int) -> int:
    """Claim a database from 15 down to 1 for this session and flush it; skip ones held by a live session.

    Several test sessions may share the machine's Redis (other developers, xdist workers): flushing a fixed
    database at start would wipe a neighbour's data mid-run. A claim is a key holding "<host>:<pid>:<token>",
    set in the same MULTI as the FLUSHDB under WATCH, so two sessions cannot claim one database.
    """
    import redis

    me = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"
    for db in range(15, 0, -1):
        client = redis.Redis(host=host, port=port, db=db, socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=5)
        try:
            with client, client.pipeline() as pipe:
                pipe.watch(REDIS_CLAIM_KEY)
                holder = pipe.get(REDIS_CLAIM_KEY)
                if holder is not None and _claim_is_live(
                    holder.decode(errors="replace") if isinstance(holder, bytes) else holder
                ):
                    continue
                pipe.multi()
                pipe.flushdb()
                pipe.set(REDIS_CLAIM_KEY, me, ex=REDIS_CLAIM_TTL_S)
                pipe.execute()
                _CLAIMS[(host, port, db)] = me
                return db
        except redis.WatchError:
            continue  # another session claimed it between WATCH and EXEC
        except redis.ResponseError as exc:
            if "out of range" in str(exc).lower():  # the server is configured with fewer databases
                continue
            raise
    raise RuntimeError(f"every database 1..15 on {host}:{port} is claimed by a live test session")


_CLAIMS: dict[tuple[str, int, int], str] = {}


def _claim_is_live(holder: str) -> bool:
    hostname, _, rest = holder.partition(":")
    pid_text, _, _ = rest.partition(":")
    if hostname != socket.gethostname() or not pid_text.isdigit():
        return True  # cannot check a process on another host: trust the claim's TTL
    return _pid_alive(int(pid_text))


_RELEASE_CLAIM = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _release_redis_db(host: str, port: int, db: int) -> None:
    import redis

    token = _CLAIMS.pop((host, port, db), None)
    if token is None:
        return
    with contextlib.suppress(redis.RedisError):
        with redis.Redis(host=host, port=port, db=db, socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=2) as c:
            c.eval(_RELEASE_CLAIM, 1, REDIS_CLAIM_KEY, token)


@pytest.fixture(scope="session")
def redis_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """The Redis server of this session: the machine's, else a throwaway one, else skip (fail under CI)."""
    host, port = _address("UNIVERSE_MCP_TEST_REDIS", REDIS_DEFAULT)
    why_not = "UNIVERSE_MCP_TEST_THROWAWAY is set" if _force_throwaway() else _redis_ping(host, port)
    if why_not is None:
        _report(request.config, "redis", f"machine server {host}:{port}")
        yield RedisServer(host, port, "machine")
        return
    binary = find_redis_server()
    if binary is None:
        reason = f"{why_not}, and no redis-server binary was found to start a throwaway one"
        _report(request.config, "redis", f"UNAVAILABLE - {reason}")
        require_service("Redis", reason)
    server = ThrowawayRedis(binary, tmp_path_factory.mktemp("redis"))
    try:
        server.start()
    except (OSError, RuntimeError) as exc:
        reason = f"{why_not}, and a throwaway redis-server failed to start: {exc}"
        _report(request.config, "redis", f"UNAVAILABLE - {reason}")
        require_service("Redis", reason)
    _report(request.config, "redis", f"throwaway server {server.host}:{server.port} ({why_not})")
    try:
        yield RedisServer(server.host, server.port, "throwaway")
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer, request: pytest.FixtureRequest) -> Iterator[str]:
    """``redis://host:port/<db>``: a non-zero database claimed for this session and flushed at its start."""
    try:
        db = _claim_redis_db(redis_server.host, redis_server.port)
    except Exception as exc:  # any failure here means "no usable Redis database"
        require_service("Redis", f"could not claim a database on {redis_server.host}:{redis_server.port}: {exc}")
    line = request.config.stash.get(_REPORT, {}).get("redis", f"server {redis_server.host}:{redis_server.port}")
    _report(request.config, "redis", f"{line}, database {db}")
    try:
        yield f"redis://{redis_server.host}:{redis_server.port}/{db}"
    finally:
        _release_redis_db(redis_server.host, redis_server.port, db)


@pytest.fixture
def throwaway_redis(tmp_path: Path) -> Iterator[ThrowawayRedis]:
    """A private, running ``redis-server`` the test may stop and restart (same port); stopped afterwards."""
    binary = find_redis_server()
    if binary is None:
        require_service("redis-server binary", "no redis-server on PATH; this test stops and restarts its own server")
    server = ThrowawayRedis(binary, tmp_path)
    try:
        server.start()
    except (OSError, RuntimeError) as exc:
        require_service("redis-server binary", f"a throwaway redis-server failed to start: {exc}")
    try:
        yield server
    finally:
        server.stop()


# ---------------------------------------------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    origin: str  # "machine" or "throwaway"

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/postgres"


async def _pg_select_1(dsn: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn, timeout=3)
    try:
        await conn.fetchval("SELECT 1")
    finally:
        await conn.close()


def _postgres_ping(host: str, port: int, user: str) -> str | None:
    """None if PostgreSQL at host:port lets ``user`` in without a password and runs SELECT 1, else why not."""
    if not _tcp_open(host, port):
        return f"nothing accepts connections on {host}:{port}"
    try:
        _run_async(_pg_select_1(f"postgresql://{user}@{host}:{port}/postgres"))
    except Exception as exc:  # asyncpg raises many unrelated types; any of them means "not usable"
        return f"{host}:{port} accepts connections but SELECT 1 as {user} failed ({type(exc).__name__}: {exc})"
    return None


def find_postgres_bindir() -> Path | None:
    """A directory holding both ``initdb`` and ``pg_ctl`` (newest version first), or None."""
    candidates: list[Path] = []
    if os.environ.get("UNIVERSE_MCP_TEST_PG_BINDIR"):
        candidates.append(Path(os.environ["UNIVERSE_MCP_TEST_PG_BINDIR"]))
    which = shutil.which("pg_ctl")
    if which:
        candidates.append(Path(which).resolve().parent)

    def version(path: str) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", path)) or (0,)

    patterns = ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/opt/homebrew/opt/postgresql@*/bin")
    for pattern in patterns:
        candidates.extend(Path(p) for p in sorted(glob.glob(pattern), key=version, reverse=True))
    candidates.extend(Path(p) for p in ("/usr/local/pgsql/bin", "/usr/local/bin", "/usr/bin"))
    for bindir in candidates:
        if all(os.access(bindir / tool, os.X_OK) for tool in ("initdb", "pg_ctl")):
            return bindir
    return None


class ThrowawayPostgres:
    """A private PostgreSQL cluster (trust auth, superuser ``postgres``, fsync off) in a temporary directory.

    As root, ``initdb``/``pg_ctl`` run as the ``postgres`` OS user (they refuse to run as root), so the directory is
    made under /tmp and handed to that user: pytest's own tmp dirs can sit under a home only root may enter.
    """

    def __init__(self, bindir: Path, port: int | None = None, host: str = "127.0.0.1") -> None:
        self.bindir = bindir
        self.host = host
        self.port = port or free_port(host)
        self._prefix = self._privilege_prefix()
        # As root the server runs as another user, who must be able to enter the directory: /tmp, not $TMPDIR.
        self.root = Path(tempfile.mkdtemp(prefix="umcp-pg-", dir="/tmp" if self._prefix else None))
        self.datadir = self.root / "data"
        self.log_path = self.root / "postgres.log"

    @staticmethod
    def _privilege_prefix() -> list[str]:
        if os.geteuid() != 0:
            return []
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise RuntimeError("running as root and there is no 'postgres' OS user to run pg_ctl as") from None
        if shutil.which("runuser"):
            return ["runuser", "-u", "postgres", "--"]
        if shutil.which("setpriv"):
            return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"]
        raise RuntimeError("running as root and neither runuser nor setpriv is available to drop to 'postgres'")

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://{POSTGRES_SUPERUSER}@{self.host}:{self.port}/postgres"

    def _run(self, *args: str, timeout_s: float = 60) -> None:
        # cwd: the unprivileged user may not be allowed into ours (e.g. under /root).
        done = subprocess.run(
            [*self._prefix, *args], cwd=self.root, capture_output=True, text=True, timeout=timeout_s, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{Path(args[0]).name} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}\n"
                f"{_tail(self.log_path)}"
            )

    def start(self) -> None:
        if self._prefix:
            pg_user = pwd.getpwnam("postgres")
            os.chown(self.root, pg_user.pw_uid, pg_user.pw_gid)
        if not self.datadir.exists():
            self._run(
                str(self.bindir / "initdb"),
                "-D", str(self.datadir),
                "-U", POSTGRES_SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            )  # fmt: skip
        options = (
            f"-p {self.port} -c listen_addresses={self.host} -c unix_socket_directories='{self.root}' "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-l", str(self.log_path),
            "-o", options, "-w", "-t", "30", "start",
        )  # fmt: skip

    def stop(self) -> None:
        if (self.datadir / "postmaster.pid").exists():
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "fast", "-w", "stop")

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server(request: pytest.FixtureRequest) -> Iterator[PostgresServer]:
    """The PostgreSQL server of this session: the machine's, else a throwaway one, else skip (fail under CI)."""
    host, port = _address("UNIVERSE_MCP_TEST_POSTGRES", POSTGRES_DEFAULT)
    user = POSTGRES_SUPERUSER
    why_not = "UNIVERSE_MCP_TEST_THROWAWAY is set" if _force_throwaway() else _postgres_ping(host, port, user)
    if why_not is None:
        _report(request.config, "postgres", f"machine server {host}:{port}")
        yield PostgresServer(host, port, user, "machine")
        return
    bindir = find_postgres_bindir()
    if bindir is None:
        reason = f"{why_not}, and no initdb/pg_ctl was found to start a throwaway server"
        _report(request.config, "postgres", f"UNAVAILABLE - {reason}")
        require_service("PostgreSQL", reason)
    server: ThrowawayPostgres | None = None
    try:
        server = ThrowawayPostgres(bindir)
        server.start()
        _run_async(_pg_select_1(server.admin_dsn))
    except Exception as exc:  # whatever went wrong, the service is unavailable
        if server is not None:
            server.cleanup()
        reason = f"{why_not}, and a throwaway PostgreSQL from {bindir} failed to start: {exc}"
        _report(request.config, "postgres", f"UNAVAILABLE - {reason}")
        require_service("PostgreSQL", reason)
    _report(request.config, "postgres", f"throwaway server {server.host}:{server.port} from {bindir} ({why_not})")
    try:
        yield PostgresServer(server.host, server.port, POSTGRES_SUPERUSER, "throwaway")
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def postgres_admin_dsn(postgres_server: PostgresServer) -> str:
    """Superuser DSN of the session's PostgreSQL server (libpq/asyncpg form), e.g. for creating roles."""
    return postgres_server.admin_dsn


async def _create_database(admin_dsn: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_dsn, timeout=5)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _drop_database(admin_dsn: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_dsn, timeout=5)
    try:
        try:
            # FORCE (PostgreSQL 13+) ends sessions a test left open, e.g. an engine that was never disposed.
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except asyncpg.PostgresSyntaxError:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                name,
            )
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """SQLAlchemy async URL of a fresh database created for this session and dropped at its end."""
    name = f"umcp_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        _run_async(_create_database(postgres_server.admin_dsn, name))
    except Exception as exc:  # any failure means the database is unusable
        require_service("PostgreSQL", f"could not create database {name}: {type(exc).__name__}: {exc}")
    try:
        yield f"postgresql+asyncpg://{postgres_server.user}@{postgres_server.host}:{postgres_server.port}/{name}"
    finally:
        _run_async(_drop_database(postgres_server.admin_dsn, name))
