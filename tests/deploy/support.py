"""Real infrastructure for the deployment tests: Docker, nginx, certificates, compose settings.

Each tool is looked for where a user would have it (``docker`` on PATH talking to
``DOCKER_HOST``, ``nginx`` from Debian's package). When one is missing the tests that need it
are skipped with the reason, unless ``DEPLOY_TESTS_REQUIRED=1`` (set by ``.ci/run``, which
installs and starts them): then a missing tool is a failure, so CI can never pass by skipping.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml

from tests.processes import free_ports

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
IMAGE = os.environ.get("DAKERA_TEST_IMAGE_TAG", "dakera-server:local")
REQUIRED = os.environ.get("DEPLOY_TESTS_REQUIRED") == "1"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def unavailable(reason: str) -> None:
    """Skip (locally) or fail (in CI) because a tool the test needs is not there."""
    if REQUIRED:
        pytest.fail(f"DEPLOY_TESTS_REQUIRED=1 but {reason}")
    pytest.skip(reason)


def docker(
    *args: str, timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run the docker CLI (``DOCKER_HOST`` from the environment)."""
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def require_image() -> None:
    """The image under test must exist (``make image`` builds it; ``.ci/run`` does)."""
    if shutil.which("docker") is None:
        unavailable("the docker CLI is not installed (apt-get install docker.io)")
    info = docker("version", "--format", "{{.Server.Version}}", check=False, timeout=20)
    if info.returncode != 0:
        unavailable(f"no Docker daemon answers (DOCKER_HOST={os.environ.get('DOCKER_HOST')})")
    if docker("image", "inspect", IMAGE, check=False).returncode != 0:
        unavailable(f"image {IMAGE} is not built (run `make image`)")


def require_nginx() -> str:
    if NGINX is None:
        unavailable("nginx is not installed (apt-get install nginx)")
    assert NGINX is not None
    return NGINX


@dataclass
class Certificates:
    """A CA, a server certificate for localhost/127.0.0.1 and a client certificate (mTLS)."""

    directory: Path
    ca: trustme.CA
    client_ca: trustme.CA

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def client_cert(self) -> Path:
        return self.directory / "client.pem"

    @property
    def client_key(self) -> Path:
        return self.directory / "client.key"


def make_certificates(directory: Path) -> Certificates:
    """Files laid out as deploy/nginx expects them under ``/etc/nginx/tls``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca, client_ca = trustme.CA(), trustme.CA()
    server = ca.issue_cert("localhost", "127.0.0.1")
    server.private_key_pem.write_to_path(str(directory / "server.key"))
    server.cert_chain_pems[0].write_to_path(str(directory / "server.crt"))
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    client_ca.cert_pem.write_to_path(str(directory / "client-ca.crt"))
    client = client_ca.issue_cert("grpc-client@example.com", common_name="grpc-client")
    client.private_key_pem.write_to_path(str(directory / "client.key"))
    client.cert_chain_pems[0].write_to_path(str(directory / "client.pem"))
    return Certificates(directory, ca, client_ca)


@dataclass
class Nginx:
    """A running nginx with deploy/nginx/dakera.conf, on loopback ports."""

    process: subprocess.Popen[bytes]
    http_port: int
    https_port: int
    grpc_port: int
    prefix: Path

    @property
    def url(self) -> str:
        return f"https://localhost:{self.https_port}"

    def log(self) -> str:
        path = self.prefix / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful: finish requests, then exit
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def render_site(tls_dir: Path, http_port: int, https_port: int, grpc_port: int) -> str:
    """deploy/nginx/dakera.conf with its ports and certificate directory moved for the test.

    Only addresses change (``listen 443`` → ``listen 127.0.0.1:<port>``, ``/etc/nginx/tls/`` →
    the test's directory); every directive under test is the shipped file's.
    """
    text = (DEPLOY / "nginx" / "dakera.conf").read_text()
    for public, port in ((80, http_port), (443, https_port), (50051, grpc_port)):
        text, count = re.subn(rf"listen {public}\b", f"listen 127.0.0.1:{port}", text)
        assert count == 1, f"deploy/nginx/dakera.conf should listen on {public} once"
    # The redirect keeps the public port (443): rewrite it to the test's HTTPS port.
    text = text.replace("https://$host$request_uri", f"https://$host:{https_port}$request_uri")
    return text.replace("/etc/nginx/tls/", f"{tls_dir}/")


def start_nginx(
    workdir: Path, tls_dir: Path, rest_upstream: str, grpc_upstream: str
) -> Iterator[Nginx]:
    """Start Debian's nginx in the foreground; yields it, stops it by its PID."""
    binary = require_nginx()
    prefix = workdir / "nginx"
    prefix.mkdir(parents=True, exist_ok=True)
    # Three different ports: asked one by one the same free port may come back twice, and
    # nginx then merges the plain and the TLS listener ("no ssl_certificate is defined").
    http_port, https_port, grpc_port = free_ports(3)
    ports = (http_port, https_port, grpc_port)
    site = render_site(tls_dir, *ports)
    upstream = (
        f"upstream dakera_rest {{ server {rest_upstream}; keepalive 16; }}\n"
        f"upstream dakera_grpc {{ server {grpc_upstream}; }}\n"
    )
    temp = "\n".join(
        f"    {name}_temp_path {prefix}/{name};"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    # As root, workers stay root: they write temp files under pytest's private (0700) directory.
    run_as = "user root root;" if os.geteuid() == 0 else ""
    (prefix / "nginx.conf").write_text(
        f"""{run_as}
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {prefix}/access.log;
{temp}
    {upstream}
    {site}
}}
"""
    )
    test = subprocess.run(
        [binary, "-t", "-p", str(prefix), "-c", str(prefix / "nginx.conf")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert test.returncode == 0, test.stderr
    with (prefix / "stderr.log").open("wb") as stderr:  # the child keeps its own descriptor
        process = subprocess.Popen(
            [binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    nginx = Nginx(process, *ports, prefix)
    try:
        _wait_listening(ports[1], process, prefix)
        yield nginx
    finally:
        nginx.stop()


def _wait_listening(
    port: int, process: subprocess.Popen[bytes], prefix: Path, timeout: float = 15
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"nginx exited: {(prefix / 'stderr.log').read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("nginx did not listen in time")


INTERPOLATION = re.compile(r"\$\{(\w+)(?::([?-])([^}]*))?\}")


def compose_service(name: str, environ: dict[str, str]) -> dict[str, Any]:
    """One service of deploy/compose.yaml with ``${VAR}``, ``${VAR:-x}``, ``${VAR:?msg}`` and
    ``$$`` interpolated from ``environ`` as Compose does: in every string value of the parsed
    file, every service (a missing ``:?`` variable is an error even in an inactive profile)."""

    def substitute(match: re.Match[str]) -> str:
        variable, kind, argument = match.groups()
        value = environ.get(variable)
        if value:
            return value
        if kind == "?":
            raise AssertionError(f"compose needs {variable}: {argument}")
        return argument or ""

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            parts = value.split("$$")
            return "$".join(INTERPOLATION.sub(substitute, part) for part in parts)
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    document = walk(yaml.safe_load((DEPLOY / "compose.yaml").read_text()))
    services: dict[str, Any] = document["services"]
    return services[name]


def docker_run_args(service: dict[str, Any]) -> list[str]:
    """The ``docker run`` flags of a compose service's hardening (user, read-only, caps, tmpfs)."""
    args: list[str] = []
    if service.get("read_only"):
        args.append("--read-only")
    if "user" in service:
        args += ["--user", str(service["user"])]
    for capability in service.get("cap_drop", []):
        args += ["--cap-drop", capability]
    for capability in service.get("cap_add", []):
        args += ["--cap-add", capability]
    for option in service.get("security_opt", []):
        args += ["--security-opt", option.replace("no-new-privileges:true", "no-new-privileges")]
    for mount in service.get("tmpfs", []):
        args += ["--tmpfs", mount]
    return args
