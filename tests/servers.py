"""Real ``redis-server`` processes on loopback ports for the test suite.

Every server is a child of ``timeout --signal=KILL <seconds> redis-server ...`` (GNU coreutils),
so no server outlives the watchdog even if the test process dies without running its atexit
handlers. Servers are started with ``--save "" --appendonly no`` in their own temporary
directory, logging to ``<dir>/redis.log``. Nothing here is asynchronous.

Environment knobs:

* ``REDIS_SERVER_BIN``: path of ``redis-server`` (default: found on ``PATH``).
* ``REDIS_TEST_WATCHDOG_SECONDS``: lifetime cap of every server (default 1500 s).
* ``REDIS_TEST_KEEP_DIRS``: if set to a non-empty value, server directories are kept on stop().
"""

from __future__ import annotations

import atexit
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import redis
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

__all__ = [
    "ClusterTopology",
    "RedisServer",
    "SentinelTopology",
    "ensure_redis_server",
    "start_cluster",
    "start_redis",
    "start_sentinel",
]

HOST = "127.0.0.1"
PORT_MIN = 20000
PORT_MAX = 55535  # the cluster bus port is port + 10000, which must stay <= 65535
BUS_PORT_OFFSET = 10000
CLUSTER_SLOTS = 16384

READY_TIMEOUT = 10.0
STOP_GRACE = 5.0
CLUSTER_TIMEOUT = 20.0
SENTINEL_TIMEOUT = 20.0
_START_ATTEMPTS = 10
_FIXED_PORT_ATTEMPTS = 5
_LOG_TAIL_LINES = 30

_BIND_ERROR_MARKERS = (
    "Address already in use",
    "Could not create server TCP listening socket",
    "Failed listening on port",
)

_lock = threading.Lock()
_reserved_ports: set[int] = set()
_live: set[RedisServer] = set()


def ensure_redis_server() -> str:
    """Return the path of ``redis-server``; raise RuntimeError if it is not installed."""
    configured = os.environ.get("REDIS_SERVER_BIN")
    candidates = [configured] if configured else [shutil.which("redis-server")]
    candidates.append("/usr/bin/redis-server")
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError(
        "redis-server not found (set REDIS_SERVER_BIN or install redis-server, "
        "e.g. `apt-get install redis-server`)"
    )


def _ensure_timeout() -> str:
    """Return the path of GNU ``timeout`` (the watchdog); raise RuntimeError if missing."""
    path = shutil.which("timeout") or "/usr/bin/timeout"
    if not os.access(path, os.X_OK):
        raise RuntimeError("GNU coreutils `timeout` not found; it is needed as server watchdog")
    return path


def _watchdog_seconds() -> int:
    return int(os.environ.get("REDIS_TEST_WATCHDOG_SECONDS", "1500"))


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def _pick_port() -> int:
    """Pick a random port in [PORT_MIN, PORT_MAX] whose bus port (port+10000) is free too."""
    rng = random.SystemRandom()
    for _ in range(1000):
        port = rng.randint(PORT_MIN, PORT_MAX)
        bus = port + BUS_PORT_OFFSET
        with _lock:
            if port in _reserved_ports or bus in _reserved_ports:
                continue
            if _port_is_free(port) and _port_is_free(bus):
                _reserved_ports.update((port, bus))
                return port
    raise RuntimeError(f"no free port pair found in {PORT_MIN}..{PORT_MAX}")


def _release_port(port: int) -> None:
    with _lock:
        _reserved_ports.discard(port)
        _reserved_ports.discard(port + BUS_PORT_OFFSET)


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, ppid) of a Linux process, or None if it does not exist."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            data = fh.read()
    except OSError:
        return None
    fields = data[data.rfind(")") + 2 :].split()
    return fields[0], int(fields[1])


def _pid_alive(pid: int) -> bool:
    stat = _proc_stat(pid)
    if stat is None:
        if not os.path.isdir("/proc/self"):  # not Linux: fall back to signal 0
            try:
                os.kill(pid, 0)
            except OSError:
                return False
            return True
        return False
    return stat[0] not in ("Z", "X")


def _child_pid(parent: int) -> int | None:
    try:
        with open(f"/proc/{parent}/task/{parent}/children", encoding="ascii") as fh:
            children = fh.read().split()
    except OSError:
        return None
    return int(children[0]) if children else None


class _StartError(RuntimeError):
    """Raised when a server did not come up; ``bind_failed`` means: retry on another port."""

    def __init__(self, message: str, *, bind_failed: bool) -> None:
        super().__init__(message)
        self.bind_failed = bind_failed


@dataclass(eq=False)
class RedisServer:
    """One running ``redis-server`` (data node or sentinel) on 127.0.0.1."""

    host: str
    port: int
    dir: Path
    process: subprocess.Popen[bytes]
    password: str | None = None
    log_path: Path = field(default=Path(), repr=False)
    redis_pid: int | None = None
    _log_file: IO[bytes] | None = field(default=None, repr=False)
    _stopped: bool = field(default=False, repr=False)

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0`` (without the password, if any)."""
        return f"redis://{self.host}:{self.port}/0"

    def client(self, **kwargs: object) -> redis.Redis:
        """Synchronous client (bytes responses); uses ``--requirepass`` if one was given."""
        options: dict[str, object] = {
            "host": self.host,
            "port": self.port,
            "password": self.password,
            "decode_responses": False,
            "socket_timeout": 5.0,
            "socket_connect_timeout": 2.0,
        }
        options.update(kwargs)
        return redis.Redis(**options)  # type: ignore[arg-type]

    def _probe(self) -> redis.Redis:
        """Client without redis-py's retry/backoff, for polling loops."""
        return self.client(
            socket_timeout=1.0, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)
        )

    @property
    def running(self) -> bool:
        """True while the watchdog process (and therefore normally the server) is alive."""
        return self.process.poll() is None

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """Last lines of the server log ('' if unavailable)."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM, SIGKILL after 5 s; remove the directory. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        try:
            if self.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    self.process.send_signal(signal.SIGTERM)  # `timeout` forwards it
                try:
                    self.process.wait(STOP_GRACE)
                except subprocess.TimeoutExpired:
                    self._kill_hard()
            self._wait_redis_gone()
        finally:
            self._cleanup()

    def kill(self) -> None:
        """SIGKILL the server immediately and wait for it; stop() still cleans up later."""
        if self.process.poll() is None:
            self._kill_hard()
        self._wait_redis_gone()

    def _kill_hard(self) -> None:
        pid = self.redis_pid or _child_pid(self.process.pid)
        if pid is not None:
            stat = _proc_stat(pid)
            if stat is not None and stat[1] == self.process.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        try:
            self.process.wait(STOP_GRACE)  # `timeout` exits once its child is gone
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def _wait_redis_gone(self, timeout: float = STOP_GRACE) -> None:
        if self.redis_pid is None:
            return
        deadline = time.monotonic() + timeout
        while _pid_alive(self.redis_pid) and time.monotonic() < deadline:
            time.sleep(0.01)

    def _cleanup(self) -> None:
        with _lock:
            _live.discard(self)
        _release_port(self.port)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if not os.environ.get("REDIS_TEST_KEEP_DIRS"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def _wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Poll until this very process answers PING (and INFO reports its pid)."""
        deadline = time.monotonic() + timeout
        client = self._probe()
        try:
            while True:
                if self.process.poll() is not None:
                    self._log_file_flush()
                    tail = self.log_tail()
                    bind_failed = any(marker in tail for marker in _BIND_ERROR_MARKERS)
                    raise _StartError(
                        f"redis-server on port {self.port} exited with code "
                        f"{self.process.returncode} during startup; log tail:\n{tail}",
                        bind_failed=bind_failed,
                    )
                try:
                    client.ping()
                    pid = int(client.info("server")["process_id"])
                except AuthenticationError:
                    # Answers, but with a password we do not know: identify it via /proc.
                    self.redis_pid = _child_pid(self.process.pid)
                    return
                except (RedisConnectionError, RedisTimeoutError, ResponseError, OSError):
                    pass
                else:
                    stat = _proc_stat(pid)
                    if stat is not None and stat[1] != self.process.pid:
                        raise _StartError(
                            f"port {self.port} is answered by another process (pid {pid})",
                            bind_failed=True,
                        )
                    self.redis_pid = pid
                    return
                if time.monotonic() > deadline:
                    raise _StartError(
                        f"redis-server on port {self.port} did not answer PING within "
                        f"{timeout:.0f} s; log tail:\n{self.log_tail()}",
                        bind_failed=False,
                    )
                time.sleep(0.02)
        finally:
            client.close()

    def _log_file_flush(self) -> None:
        if self._log_file is not None:
            self._log_file.flush()


def _stop_all() -> None:
    with _lock:
        servers = list(_live)
    for server in servers:
        with contextlib.suppress(Exception):  # best effort at interpreter exit
            server.stop()


atexit.register(_stop_all)


def _launch(
    build_args: Callable[[int, Path], list[str]],
    *,
    port: int | None,
    password: str | None,
    kind: str,
) -> RedisServer:
    """Start ``redis-server <build_args(port, dir)>`` under the watchdog and wait for PING."""
    binary = ensure_redis_server()
    watchdog = _ensure_timeout()
    attempts = _FIXED_PORT_ATTEMPTS if port is not None else _START_ATTEMPTS
    failures: list[str] = []
    for _attempt in range(attempts):
        chosen = port if port is not None else _pick_port()
        directory = Path(tempfile.mkdtemp(prefix=f"redis-test-{kind}-{chosen}-"))
        log_path = directory / "redis.log"
        log_file = open(log_path, "wb")  # noqa: SIM115 - closed by RedisServer.stop()
        try:
            process = subprocess.Popen(
                [
                    watchdog,
                    "--signal=KILL",
                    str(_watchdog_seconds()),
                    binary,
                    *build_args(chosen, directory),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=directory,
                start_new_session=True,
            )
        except BaseException:
            log_file.close()
            shutil.rmtree(directory, ignore_errors=True)
            if port is None:
                _release_port(chosen)
            raise
        server = RedisServer(
            host=HOST,
            port=chosen,
            dir=directory,
            process=process,
            password=password,
            log_path=log_path,
            _log_file=log_file,
        )
        with _lock:
            _live.add(server)
        try:
            server._wait_ready()
        except _StartError as exc:
            server.stop()
            if not exc.bind_failed:
                raise RuntimeError(f"starting {kind} failed: {exc}") from None
            failures.append(str(exc))
            if port is not None:
                time.sleep(0.2)
            continue
        except BaseException:
            server.stop()
            raise
        return server
    raise RuntimeError(
        f"starting {kind} failed after {attempts} attempts (port in use); last error:\n"
        + (failures[-1] if failures else "?")
    )


def _base_args(port: int, directory: Path) -> list[str]:
    return [
        "--port",
        str(port),
        "--bind",
        HOST,
        "--dir",
        str(directory),
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        "--logfile",
        "",
        "--repl-diskless-sync-delay",
        "0",
        "--shutdown-on-sigterm",
        "now",
    ]


def _password_from(args: Sequence[str]) -> str | None:
    password: str | None = None
    for index, arg in enumerate(args[:-1]):
        if arg == "--requirepass":
            password = args[index + 1]
    return password


def start_redis(*extra_args: str, port: int | None = None) -> RedisServer:
    """Start a standalone server; ``extra_args`` are appended to its command line."""
    extra = list(extra_args)
    return _launch(
        lambda p, d: _base_args(p, d) + extra,
        port=port,
        password=_password_from(extra),
        kind="redis",
    )


def _wait_for(condition: Callable[[], bool], timeout: float, describe: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            if condition():
                return
        except (redis.RedisError, OSError) as exc:
            last_error = exc
        if time.monotonic() > deadline:
            suffix = f" (last error: {last_error!r})" if last_error else ""
            raise RuntimeError(f"timed out after {timeout:.0f} s: {describe()}{suffix}")
        time.sleep(0.05)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _as_dict(entry: object) -> dict[str, str]:
    """A RESP3 map or RESP2 flat ``[k, v, ...]`` list as ``{str: str}``."""
    if isinstance(entry, dict):
        return {_text(k): _text(v) for k, v in entry.items()}
    items = list(entry)  # type: ignore[call-overload]
    return {_text(k): _text(v) for k, v in zip(items[::2], items[1::2], strict=True)}


# --------------------------------------------------------------------------- sentinel


@dataclass(eq=False)
class SentinelTopology:
    """One master, one replica and one sentinel monitoring them as ``service_name``."""

    master: RedisServer
    replica: RedisServer
    sentinel: RedisServer
    service_name: str

    @property
    def url(self) -> str:
        """``redis+sentinel://127.0.0.1:SENTINEL_PORT/SERVICE/0``."""
        return f"redis+sentinel://{self.sentinel.host}:{self.sentinel.port}/{self.service_name}/0"

    @property
    def sentinels(self) -> list[tuple[str, int]]:
        """Sentinel addresses, as taken by ``redis.sentinel.Sentinel``."""
        return [(self.sentinel.host, self.sentinel.port)]

    def stop(self) -> None:
        """Stop sentinel, replica and master (in that order). Idempotent."""
        for server in (self.sentinel, self.replica, self.master):
            server.stop()


def _replication_info(server: RedisServer) -> dict[str, object]:
    with server._probe() as client:
        info: dict[str, object] = client.info("replication")
    return info


def start_sentinel(service_name: str = "mymaster") -> SentinelTopology:
    """Start master + replica + one sentinel (quorum 1) and wait until all is in sync."""
    started: list[RedisServer] = []
    try:
        master = start_redis()
        started.append(master)
        replica = start_redis("--replicaof", master.host, str(master.port))
        started.append(replica)
        _wait_for(
            lambda: _replication_info(replica).get("master_link_status") == "up",
            SENTINEL_TIMEOUT,
            lambda: f"replica {replica.port} not in sync:\n{replica.log_tail()}",
        )

        def sentinel_args(port: int, directory: Path) -> list[str]:
            conf = directory / "sentinel.conf"
            conf.write_text(
                "\n".join(
                    [
                        f"port {port}",
                        f"bind {HOST}",
                        f'dir "{directory}"',
                        "daemonize no",
                        'logfile ""',
                        f"sentinel monitor {service_name} {master.host} {master.port} 1",
                        f"sentinel down-after-milliseconds {service_name} 1000",
                        f"sentinel failover-timeout {service_name} 5000",
                        f"sentinel parallel-syncs {service_name} 1",
                        "",
                    ]
                ),
                encoding="utf-8",
            )
            return [str(conf), "--sentinel"]

        sentinel = _launch(sentinel_args, port=None, password=None, kind="sentinel")
        started.append(sentinel)

        def sentinel_ready() -> bool:
            with sentinel._probe() as client:
                addr = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", service_name)
                if not addr or (_text(addr[0]), int(addr[1])) != (master.host, master.port):
                    return False
                replicas = client.execute_command("SENTINEL", "REPLICAS", service_name)
            for entry in replicas:
                info = _as_dict(entry)
                flags = set(info.get("flags", "").split(","))
                if (
                    int(info.get("port", 0)) == replica.port
                    and "slave" in flags
                    and not flags & {"s_down", "o_down", "disconnected"}
                    and info.get("master-link-status") == "ok"
                ):
                    return True
            return False

        _wait_for(
            sentinel_ready,
            SENTINEL_TIMEOUT,
            lambda: f"sentinel {sentinel.port} does not see master+replica:\n{sentinel.log_tail()}",
        )
        return SentinelTopology(
            master=master, replica=replica, sentinel=sentinel, service_name=service_name
        )
    except BaseException:
        for server in reversed(started):
            server.stop()
        raise


# --------------------------------------------------------------------------- cluster


@dataclass(eq=False)
class ClusterTopology:
    """A Redis Cluster of master-only nodes covering all 16384 slots."""

    nodes: list[RedisServer]

    @property
    def url(self) -> str:
        """``redis+cluster://127.0.0.1:P1,127.0.0.1:P2,...``."""
        return "redis+cluster://" + ",".join(f"{n.host}:{n.port}" for n in self.nodes)

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        """``[(host, port), ...]`` of all nodes."""
        return [(n.host, n.port) for n in self.nodes]

    def stop(self) -> None:
        """Stop every node. Idempotent."""
        for node in self.nodes:
            node.stop()


def _cluster_text(client: redis.Redis, subcommand: str) -> str:
    # Call through "CLUSTER" alone so no redis-py response callback reshapes the reply.
    return _text(client.execute_command("CLUSTER", subcommand))  # type: ignore[no-untyped-call]


def _cluster_node_ok(node: RedisServer, masters: int) -> bool:
    with node._probe() as client:
        info = dict(
            line.split(":", 1) for line in _cluster_text(client, "INFO").splitlines() if ":" in line
        )
        if (
            info.get("cluster_state") != "ok"
            or info.get("cluster_slots_ok") != str(CLUSTER_SLOTS)
            or info.get("cluster_known_nodes") != str(masters)
            or info.get("cluster_size") != str(masters)
        ):
            return False
        lines = [line for line in _cluster_text(client, "NODES").splitlines() if line.strip()]
    if len(lines) != masters:
        return False
    for line in lines:
        parts = line.split()
        flags = set(parts[2].split(","))
        if (
            not parts[1].startswith(f"{HOST}:")
            or "master" not in flags
            or flags & {"fail", "fail?", "handshake", "noaddr"}
            or parts[7] != "connected"
        ):
            return False
    return True


def start_cluster(masters: int = 3) -> ClusterTopology:
    """Start ``masters`` cluster nodes, split the slots evenly and wait for cluster_state:ok."""
    if masters < 1:
        raise ValueError("masters must be >= 1")
    nodes: list[RedisServer] = []
    try:
        for _ in range(masters):
            nodes.append(
                start_redis(
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "2000",
                )
            )
        for index, node in enumerate(nodes):
            first = index * CLUSTER_SLOTS // masters
            last = (index + 1) * CLUSTER_SLOTS // masters - 1
            with node.client() as client:
                client.execute_command("CLUSTER", "SET-CONFIG-EPOCH", index + 1)
                client.execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
        with nodes[0].client() as client:
            for node in nodes[1:]:
                client.execute_command("CLUSTER", "MEET", node.host, node.port)

        def describe() -> str:
            states = []
            for node in nodes:
                try:
                    with node._probe() as client:
                        states.append(f"--- {node.port}:\n{_cluster_text(client, 'NODES')}")
                except redis.RedisError as exc:
                    states.append(f"--- {node.port}: {exc!r}")
            return "cluster did not converge:\n" + "\n".join(states)

        _wait_for(
            lambda: all(_cluster_node_ok(node, masters) for node in nodes),
            CLUSTER_TIMEOUT,
            describe,
        )
        return ClusterTopology(nodes=nodes)
    except BaseException:
        for node in nodes:
            node.stop()
        raise
