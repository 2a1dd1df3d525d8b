"""Real ``redis-server`` processes on loopback ports for the test suite.

Every server is a child of ``timeout --signal=KILL <seconds> redis-server ...`` (GNU coreutils),
so no server outlives the watchdog even if the test process dies without running its atexit
handlers. Servers are started with ``--save "" --appendonly no`` in their own temporary
directory, logging to ``<dir>/redis.log``. Nothing here is asynchronous.

Environment knobs:

* ``REDIS_SERVER_BIN``: path of ``redis-server`` (default: found on ``PATH``).
* ``REDIS_TEST_WATCHDOG_SECONDS``: lifetime cap of every server (default 1500 s).
* ``REDIS_TEST_KEEP_DIRS``: if set to a non-empty value, server directories are kept on stop().

TLS servers (``start_redis_tls``, ``start_cluster(tls=...)``) use certificates that
``make_tls_files`` generates at run time: a CA, a server certificate for 127.0.0.1 and
localhost signed by it, and an unrelated second CA (to check that verification fails).
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
    "SlotMigration",
    "TLSFiles",
    "ensure_redis_server",
    "make_tls_files",
    "start_cluster",
    "start_redis",
    "start_redis_tls",
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
    if configured:
        # No fallback: a run meant for another server (valkey-server) must not quietly
        # test redis-server instead.
        if os.path.isfile(configured) and os.access(configured, os.X_OK):
            return configured
        raise RuntimeError(f"REDIS_SERVER_BIN={configured!r} is not an executable file")
    candidates = [shutil.which("redis-server"), "/usr/bin/redis-server"]
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


# --------------------------------------------------------------------------- TLS


@dataclass(frozen=True)
class TLSFiles:
    """PEM files of a test PKI (see ``make_tls_files``)."""

    ca_cert: Path  # the CA that signed the server certificate
    server_cert: Path  # for 127.0.0.1 and localhost; also serves as client cert between nodes
    server_key: Path
    other_ca_cert: Path  # an unrelated CA: verifying the server against it must fail


def make_tls_files(directory: Path) -> TLSFiles:
    """Write a fresh CA, a server certificate signed by it and an unrelated CA to
    ``directory`` (EC P-256 keys: generated in milliseconds)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    valid = (now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=1))

    def name(common_name: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])

    def key_usage(*, ca: bool) -> x509.KeyUsage:
        return x509.KeyUsage(
            digital_signature=True,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=not ca,
            key_cert_sign=ca,
            crl_sign=ca,
            encipher_only=False,
            decipher_only=False,
        )

    def make_ca(common_name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name(common_name))
            .issuer_name(name(common_name))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(valid[0])
            .not_valid_after(valid[1])
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(key_usage(ca=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        return cert, key

    ca_cert, ca_key = make_ca("turnstore test CA")
    other_ca_cert, _ = make_ca("turnstore unrelated CA")
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(name("turnstore test server"))
        .issuer_name(ca_cert.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid[0])
        .not_valid_after(valid[1])
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage(ca=False), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    files = TLSFiles(
        ca_cert=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        other_ca_cert=directory / "other-ca.pem",
    )
    pem = serialization.Encoding.PEM
    files.ca_cert.write_bytes(ca_cert.public_bytes(pem))
    files.other_ca_cert.write_bytes(other_ca_cert.public_bytes(pem))
    files.server_cert.write_bytes(server_cert.public_bytes(pem))
    files.server_key.write_bytes(
        server_key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return files


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
    tls: TLSFiles | None = None  # set: the server speaks only TLS, on `port`
    log_path: Path = field(default=Path(), repr=False)
    redis_pid: int | None = None
    _log_file: IO[bytes] | None = field(default=None, repr=False)
    _stopped: bool = field(default=False, repr=False)

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0`` (``rediss://`` with TLS; without the password or the
        CA, if any)."""
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://{self.host}:{self.port}/0"

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
        if self.tls is not None:
            options.update(ssl=True, ssl_ca_certs=str(self.tls.ca_cert))
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
    tls: TLSFiles | None = None,
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
            tls=tls,
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


def start_redis_tls(*extra_args: str, tls: TLSFiles, port: int | None = None) -> RedisServer:
    """Start a standalone server that speaks only TLS (``--port 0 --tls-port PORT``), with
    the certificate of ``tls``; clients need no certificate (``--tls-auth-clients no``)."""
    extra = list(extra_args)

    def args(chosen: int, directory: Path) -> list[str]:
        base = _base_args(chosen, directory)
        base[base.index("--port") + 1] = "0"
        return [
            *base,
            "--tls-port",
            str(chosen),
            "--tls-cert-file",
            str(tls.server_cert),
            "--tls-key-file",
            str(tls.server_key),
            "--tls-ca-cert-file",
            str(tls.ca_cert),
            "--tls-auth-clients",
            "no",
            *extra,
        ]

    return _launch(args, port=port, password=_password_from(extra), kind="redis-tls", tls=tls)


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
        """``redis+cluster://127.0.0.1:P1,127.0.0.1:P2,...`` (a TLS cluster needs the CA in
        the query too: ``?ssl_ca_certs=...``)."""
        return "redis+cluster://" + ",".join(f"{n.host}:{n.port}" for n in self.nodes)

    def node_id(self, node: RedisServer) -> str:
        """The node's cluster id (``CLUSTER MYID``)."""
        with node.client() as client:
            return _text(client.execute_command("CLUSTER", "MYID"))

    def owner_of(self, slot: int) -> RedisServer:
        """The node serving ``slot``, as the nodes themselves see it (``CLUSTER SHARDS`` is
        7.0+, so this reads ``CLUSTER SLOTS``)."""
        with self.nodes[0].client() as client:
            ranges = client.execute_command("CLUSTER", "SLOTS")
        for entry in ranges:
            first, last, primary = int(entry[0]), int(entry[1]), entry[2]
            if first <= slot <= last:
                port = int(primary[1])
                return next(n for n in self.nodes if n.port == port)
        raise LookupError(f"slot {slot} is not served")

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


def start_cluster(masters: int = 3, *, tls: TLSFiles | None = None) -> ClusterTopology:
    """Start ``masters`` cluster nodes, split the slots evenly and wait for cluster_state:ok.

    With ``tls`` every node speaks only TLS, to clients and on the cluster bus.
    """
    if masters < 1:
        raise ValueError("masters must be >= 1")
    cluster_args = (
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",
        "--cluster-node-timeout",
        "2000",
    )
    nodes: list[RedisServer] = []
    try:
        for _ in range(masters):
            if tls is None:
                nodes.append(start_redis(*cluster_args))
            else:
                nodes.append(
                    start_redis_tls(
                        *cluster_args, "--tls-cluster", "yes", "--tls-replication", "yes", tls=tls
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


class SlotMigration:
    """Moves one slot of a cluster to another node, step by step, as ``redis-cli --cluster
    reshard`` does: ``SETSLOT IMPORTING`` on the target and ``MIGRATING`` on the source,
    ``MIGRATE`` the keys a few at a time, then ``SETSLOT NODE`` on every node (target first).

    Synchronous: run it in a thread (``asyncio.to_thread``) while clients keep working.
    """

    def __init__(self, cluster: ClusterTopology, slot: int, target: RedisServer) -> None:
        self.cluster = cluster
        self.slot = slot
        self.source = cluster.owner_of(slot)
        if target is self.source:
            raise ValueError(f"slot {slot} is already served by {target.port}")
        self.target = target
        self._source_id = cluster.node_id(self.source)
        self._target_id = cluster.node_id(target)
        self.moved_keys = 0
        self.finished = False

    def begin(self) -> None:
        with self.target.client() as target:
            target.execute_command("CLUSTER", "SETSLOT", self.slot, "IMPORTING", self._source_id)
        with self.source.client() as source:
            source.execute_command("CLUSTER", "SETSLOT", self.slot, "MIGRATING", self._target_id)

    def move_keys(self, *, per_step: int = 10, pause: float = 0.0) -> None:
        """``MIGRATE`` every key of the slot, ``per_step`` keys at a time, sleeping ``pause``
        seconds between steps (so that clients run into a half-moved slot)."""
        with self.source.client() as source:
            while True:
                keys = source.execute_command("CLUSTER", "GETKEYSINSLOT", self.slot, per_step)
                if not keys:
                    return
                source.execute_command(
                    "MIGRATE", self.target.host, self.target.port, "", 0, 5000, "KEYS", *keys
                )
                self.moved_keys += len(keys)
                if pause:
                    time.sleep(pause)

    def finish(self) -> None:
        """Assign the slot to the target on every node, the target and source first."""
        others = [n for n in self.cluster.nodes if n is not self.target and n is not self.source]
        for node in (self.target, self.source, *others):
            with node.client() as client:
                client.execute_command("CLUSTER", "SETSLOT", self.slot, "NODE", self._target_id)
        self.finished = True

    def run(self, *, per_step: int = 10, pause: float = 0.0) -> None:
        self.begin()
        self.move_keys(per_step=per_step, pause=pause)
        self.finish()


# --------------------------------------------------------------------------- faults


def enable_aof_always(server: RedisServer, timeout: float = READY_TIMEOUT) -> None:
    """Turn on the append-only file with an fsync per write and wait until it is written,
    so that a write the server acknowledged survives a SIGKILL and a `restart_redis`."""
    with server._probe() as client:
        client.config_set("appendonly", "yes")
        client.config_set("appendfsync", "always")
        _wait_for(
            lambda: (
                int(client.info("persistence")["aof_rewrite_in_progress"]) == 0
                and int(client.info("persistence")["aof_rewrite_scheduled"]) == 0
            ),
            timeout,
            lambda: f"AOF rewrite on {server.port} did not finish:\n{server.log_tail()}",
        )


def restart_redis(server: RedisServer, *extra_args: str) -> RedisServer:
    """Start a server again on the port and in the directory of `server` (killed before:
    see `RedisServer.kill`), loading its append-only file. Stop the new one before the old."""
    return start_redis(
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--dir",
        str(server.dir),
        *extra_args,
        port=server.port,
    )


def freeze(server: RedisServer) -> None:
    """SIGSTOP the server: connections stay open, nothing is answered."""
    assert server.redis_pid is not None
    os.kill(server.redis_pid, signal.SIGSTOP)


def thaw(server: RedisServer) -> None:
    """SIGCONT a server `freeze` stopped."""
    assert server.redis_pid is not None
    os.kill(server.redis_pid, signal.SIGCONT)


def wait_cluster_ok(cluster: ClusterTopology, timeout: float = 30.0) -> None:
    """Wait until every node of `cluster` sees every node up and every slot served again (after
    a node was frozen or restarted, the others may have flagged it as failing for a while)."""
    masters = len(cluster.nodes)
    _wait_for(
        lambda: all(_cluster_node_ok(node, masters) for node in cluster.nodes),
        timeout,
        lambda: "the cluster did not come back to cluster_state:ok",
    )
