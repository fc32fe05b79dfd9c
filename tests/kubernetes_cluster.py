"""A real Kubernetes control plane on loopback for the tests: etcd, kube-apiserver and
kube-controller-manager (its namespace controller finishes namespace deletions), built by
`make engine` (cached in ~/.cache/kafka-platform/kubernetes, linked into .venv/engine/bin). There
is no kubelet: Deployments exist and roll out as objects, but their pods never become Ready.

The API server serves TLS with a CA made here and takes one static token (cluster-admin);
`kubeconfig` points at it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from infra.live.kafka_broker import stop_process

CONTROL_PLANE = Path(sys.prefix) / "engine" / "bin"  # where `make engine` links them
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager")


@dataclass(frozen=True)
class ControlPlane:
    server: str
    token: str
    ca_file: Path
    kubeconfig: Path


def missing_binaries() -> list[str]:
    return [name for name in BINARIES if not (CONTROL_PLANE / name).is_file()]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _certificates(work: Path) -> None:
    """A CA, the API server's serving certificate (127.0.0.1, localhost), the service-account key."""
    ca_subject = "/CN=kafka-platform-test-ca"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", ca_subject,
             "-keyout", "ca.key", "-out", "ca.crt", cwd=work)  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=kube-apiserver",
             "-keyout", "apiserver.key", "-out", "apiserver.csr", cwd=work)  # fmt: skip
    (work / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\n")
    _openssl("x509", "-req", "-in", "apiserver.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "2", "-extfile", "san.cnf", "-out", "apiserver.crt", cwd=work)  # fmt: skip
    _openssl("genrsa", "-out", "service-account.key", "2048", cwd=work)
    _openssl("rsa", "-in", "service-account.key", "-pubout", "-out", "service-account.pub", cwd=work)


def _kubeconfig(server: str, ca_file: Path, token: str) -> str:
    return f"""apiVersion: v1
kind: Config
clusters:
- name: test
  cluster: {{server: "{server}", certificate-authority: "{ca_file}"}}
users:
- name: admin
  user: {{token: "{token}"}}
contexts:
- name: test
  context: {{cluster: test, user: admin}}
current-context: test
"""


def _start(stack: ExitStack, work: Path, name: str, args: list[str]) -> subprocess.Popen[bytes]:
    log = stack.enter_context((work / f"{name}.log").open("wb"))
    process = subprocess.Popen([str(CONTROL_PLANE / name), *args], stdout=log, stderr=subprocess.STDOUT)

    stack.callback(stop_process, process, 20)
    return process


def _wait_ready(
    plane: ControlPlane, processes: list[subprocess.Popen[bytes]], work: Path, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in processes:
            if process.poll() is not None:
                name = Path(str(process.args[0])).name  # type: ignore[index]
                raise RuntimeError(f"{name} exited: {(work / f'{name}.log').read_text()[-2000:]}")
        ready = subprocess.run(
            ["curl", "-sf", "--cacert", str(plane.ca_file), "-H", f"Authorization: Bearer {plane.token}",
             f"{plane.server}/readyz"],
            capture_output=True, check=False,
        )  # fmt: skip
        if ready.returncode == 0:
            return
        time.sleep(0.5)
    raise RuntimeError(
        f"kube-apiserver not ready in {timeout}s: {(work / 'kube-apiserver.log').read_text()[-2000:]}"
    )


@contextmanager
def control_plane(work: Path, timeout: float = 120) -> Iterator[ControlPlane]:
    work.mkdir(parents=True, exist_ok=True)
    _certificates(work)
    token = os.urandom(16).hex()
    (work / "tokens.csv").write_text(f'{token},admin,admin,"system:masters"\n')
    etcd_port, etcd_peer, api_port = _free_port(), _free_port(), _free_port()
    server = f"https://127.0.0.1:{api_port}"
    plane = ControlPlane(server, token, work / "ca.crt", work / "kubeconfig")
    plane.kubeconfig.write_text(_kubeconfig(server, plane.ca_file, token))
    with ExitStack() as stack:
        etcd = _start(stack, work, "etcd", [
            f"--data-dir={work / 'etcd'}",
            f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
            f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
            f"--listen-peer-urls=http://127.0.0.1:{etcd_peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}",
            f"--initial-cluster=default=http://127.0.0.1:{etcd_peer}",
            "--log-level=warn",
        ])  # fmt: skip
        apiserver = _start(stack, work, "kube-apiserver", [
            f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={api_port}",
            f"--tls-cert-file={work / 'apiserver.crt'}",
            f"--tls-private-key-file={work / 'apiserver.key'}",
            f"--client-ca-file={work / 'ca.crt'}",
            f"--token-auth-file={work / 'tokens.csv'}",
            "--authorization-mode=Node,RBAC",
            f"--service-account-key-file={work / 'service-account.pub'}",
            f"--service-account-signing-key-file={work / 'service-account.key'}",
            "--service-account-issuer=https://kubernetes.default.svc",
            "--service-cluster-ip-range=10.96.0.0/24",
            "--enable-priority-and-fairness=false",
            "--v=0",
        ])  # fmt: skip
        _wait_ready(plane, [etcd, apiserver], work, timeout)
        manager = _start(stack, work, "kube-controller-manager", [
            f"--kubeconfig={plane.kubeconfig}",
            f"--authentication-kubeconfig={plane.kubeconfig}",
            f"--authorization-kubeconfig={plane.kubeconfig}",
            "--controllers=namespace-controller,deployment-controller,replicaset-controller,"
            "garbage-collector-controller",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={_free_port()}",
            f"--service-account-private-key-file={work / 'service-account.key'}",
            f"--root-ca-file={work / 'ca.crt'}",
        ])  # fmt: skip
        # It reads its flags at start: one it does not know ends it within a second or two.
        time.sleep(3)
        if manager.poll() is not None:
            log = (work / "kube-controller-manager.log").read_text()[-2000:]
            raise RuntimeError(f"kube-controller-manager exited: {log}")
        yield plane
