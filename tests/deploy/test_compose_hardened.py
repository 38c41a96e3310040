"""The hardened Compose configuration passes ``doctor``; its files keep their hardening.

No image registry is reachable here, so ``docker compose up`` (which needs the nginx image) is
not run. Instead the ``dakera`` service of ``deploy/compose.yaml`` is read and run exactly as
Compose would run it — its environment (interpolated), user, read-only root, dropped
capabilities and no-new-privileges — with Debian's nginx and ``deploy/nginx/dakera.conf`` in
front. Only addresses change: the container binds loopback on the host network, and the proxy
it trusts is that nginx at 127.0.0.1 instead of the compose network's 172.30.53.10.
"""

from __future__ import annotations

import json
import os
import secrets
import ssl
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.deploy.conftest import ContainerFactory
from tests.deploy.support import (
    DEPLOY,
    compose_service,
    docker,
    docker_run_args,
    make_certificates,
    require_nginx,
    start_nginx,
)
from tests.processes import BIN

HARDENING = {"read_only": True, "cap_drop": ["ALL"], "security_opt": ["no-new-privileges:true"]}


def test_every_compose_service_is_hardened() -> None:
    services: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    assert {"dakera", "nginx", "dakera-2", "postgres", "redis"} <= set(services)
    for name, service in services.items():
        for key, value in HARDENING.items():
            assert service.get(key) == value, (name, key)
        assert "privileged" not in service and "network_mode" not in service, name
    for name in ("dakera", "dakera-2"):
        assert services[name]["user"] == "1000:1000"
        assert "tmpfs" not in services[name]  # /data is the only writable path
        assert "ports" not in services[name]  # reached only through nginx
    assert [n for n, s in services.items() if "ports" in s] == ["nginx"]
    scale_out = {n for n, s in services.items() if "scale-out" in s.get("profiles", [])}
    assert scale_out == {"dakera-2", "postgres", "redis"}


def test_the_hardened_compose_configuration_passes_doctor(
    run_container: ContainerFactory, tmp_path: Path
) -> None:
    require_nginx()
    secrets_env = {
        "DAKERA_ROOT_API_KEY": secrets.token_hex(32),
        "DAKERA_ENCRYPTION_KEY": secrets.token_hex(32),
    }
    service = compose_service("dakera", secrets_env)
    environment = {k: str(v) for k, v in service["environment"].items()}
    assert environment["DAKERA_TRUSTED_PROXIES"] == "172.30.53.10"
    environment["DAKERA_TRUSTED_PROXIES"] = "127.0.0.1"  # nginx's address in this test
    container = run_container(*docker_run_args(service), env=environment, hardened=False)
    container.wait_ready()
    certs = make_certificates(tmp_path / "tls")
    root_key = environment["DAKERA_ROOT_API_KEY"]
    rest = container.url.removeprefix("http://")
    for nginx in start_nginx(tmp_path, certs.directory, rest, f"127.0.0.1:{container.grpc_port}"):
        verify = str(certs.ca_file)
        with httpx.Client(
            verify=ssl.create_default_context(cafile=verify),
            headers={"Authorization": f"Bearer {root_key}"},
        ) as http:
            created = http.post(
                f"{nginx.url}/admin/keys",
                json={"name": "app", "scope": "write", "namespace": "app", "expires_in_days": 90},
            )
            assert created.status_code == 201, created.text
        clean = {k: v for k, v in os.environ.items() if not k.startswith("DAKERA_")}
        doctor = subprocess.run(
            [str(BIN), "doctor", "--url", nginx.url, "--ca-cert", verify, "--api-key", root_key],
            env=clean,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        print("\n" + doctor.stdout)
        assert doctor.returncode == 0, doctor.stdout + doctor.stderr
        assert "all Required items pass" in doctor.stdout
        as_json = subprocess.run(
            [str(BIN), "doctor", "--url", nginx.url, "--ca-cert", verify, "--api-key", root_key,
             "--json"],
            env=clean, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        report = json.loads(as_json.stdout)
        statuses = {c["id"]: c["status"] for c in report["checks"]}
        # Everything observable passes: the Recommended items too, in this configuration.
        assert {k: v for k, v in statuses.items() if v not in ("pass", "manual")} == {}
    inside = docker("exec", container.id, "/opt/dakera/venv/bin/dakera-server", "doctor",
                    check=False)  # fmt: skip
    assert inside.returncode == 0, inside.stdout + inside.stderr


@pytest.mark.parametrize("missing", ["DAKERA_ROOT_API_KEY", "DAKERA_ENCRYPTION_KEY"])
def test_compose_refuses_to_start_without_the_keys(missing: str) -> None:
    environ = {"DAKERA_ROOT_API_KEY": "x" * 64, "DAKERA_ENCRYPTION_KEY": "y" * 64}
    del environ[missing]
    with pytest.raises(AssertionError, match=missing):
        compose_service("dakera", environ)
