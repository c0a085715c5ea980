"""A local Kubernetes control plane from upstream binaries: etcd, kube-apiserver,
kube-controller-manager, kube-scheduler and kwok (pods become Running/Ready without a kubelet).

    with ControlPlane.running() as cluster:
        cluster.kubeconfig          # admin (system:masters), for kubectl and tests
        cluster.server, cluster.ca_file, cluster.admin_token

Like controller-runtime's envtest plus the controllers that make Deployments, ReplicaSets, pods and
garbage collection real. Everything listens on 127.0.0.1 on free ports, lives in one temp dir and is
torn down on exit; children are started with a parent-death signal, so even a killed test run leaves
no process behind. Authentication: static bearer tokens (one identity per component, so the audit log
tells them apart) and service-account tokens (TokenRequest), authorization RBAC. The apiserver writes
an audit log (`audit_log`), which tests read to see exactly which requests an identity made.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from . import build

NODE_NAME = "kwok-node-0"
SERVICE_CIDR = "10.0.0.0/16"  # 65k Services: the benchmark makes thousands
START_TIMEOUT = 90.0
# Users that are the control plane itself: left out of the audit log.
COMPONENTS = ("kube-controller-manager", "kube-scheduler", "kwok")

_AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        {"level": "None", "users": [f"system:{name}" for name in COMPONENTS] + ["system:apiserver"]},
        {"level": "None", "nonResourceURLs": ["/healthz*", "/readyz*", "/livez*", "/version", "/openapi*"]},
        {"level": "Metadata"},
    ],
}


class ControlPlaneError(RuntimeError):
    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    # PR_SET_PDEATHSIG: SIGKILL the child when the process that started it dies (even by SIGKILL).
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)


def _write_pem(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    path.chmod(0o600)
    return path


def _certificates(folder: Path) -> tuple[Path, Path, Path, Path, Path]:
    """A CA, the apiserver's serving cert (127.0.0.1, localhost) and the service-account key pair."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "aiassistant-dev-ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = [
        x509.DNSName("localhost"),
        x509.DNSName("kubernetes.default.svc"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("10.0.0.1")),
    ]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = serialization.Encoding.PEM
    private = serialization.PrivateFormat.PKCS8
    none = serialization.NoEncryption()
    return (
        _write_pem(folder / "ca.crt", ca.public_bytes(pem)),
        _write_pem(folder / "apiserver.crt", cert.public_bytes(pem)),
        _write_pem(folder / "apiserver.key", key.private_bytes(pem, private, none)),
        _write_pem(folder / "sa.key", sa_key.private_bytes(pem, private, none)),
        _write_pem(
            folder / "sa.pub",
            sa_key.public_key().public_bytes(pem, serialization.PublicFormat.SubjectPublicKeyInfo),
        ),
    )


def kubeconfig(
    server: str, ca_file: Path, token: str, user: str, namespace: str = "default"
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "aiassistant-dev", "cluster": {"server": server, "certificate-authority": str(ca_file)}}
        ],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [
            {"name": user, "context": {"cluster": "aiassistant-dev", "user": user, "namespace": namespace}}
        ],
        "current-context": user,
    }


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class ControlPlane:
    """A running control plane. Use `ControlPlane.running()`; attributes are read-only facts."""

    workdir: Path
    bin_dir: Path
    server: str = ""
    ca_file: Path = field(default_factory=Path)
    admin_token: str = ""
    kubeconfig: Path = field(default_factory=Path)
    audit_log: Path = field(default_factory=Path)
    start_seconds: float = 0.0
    version: str = ""  # the apiserver's gitVersion, e.g. v1.35.4
    processes: list[Process] = field(default_factory=list)

    # ------------------------------------------------------------------ life cycle

    @classmethod
    @contextlib.contextmanager
    def running(
        cls, crds: Iterable[Path] = (), workdir: Path | None = None, bin_dir: Path | None = None
    ) -> Iterator[ControlPlane]:
        """Start it, with `crds` installed before the controllers start (as envtest does): the
        garbage collector learns a resource kind from discovery at start, then only every 30 s."""
        binaries = bin_dir or build.bin_dir()
        absent = [name for name in build.BINARIES if not (binaries / name).exists()]
        if absent:
            raise ControlPlaneError(
                f"control-plane binaries missing in {binaries}: {', '.join(absent)}; "
                "build them with `make install` (python -m aiassistant_devtools.build)"
            )
        own_dir = workdir is None
        folder = Path(tempfile.mkdtemp(prefix="aiassistant-cp-")) if workdir is None else workdir
        plane = cls(workdir=folder, bin_dir=binaries)
        try:
            plane._start(list(crds))
            yield plane
        finally:
            plane.stop()
            if own_dir:
                shutil.rmtree(folder, ignore_errors=True)

    def _spawn(self, name: str, args: list[str]) -> Process:
        log = self.workdir / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(  # noqa: S603 - our own binaries, fixed arguments
                [str(self.bin_dir / name.split("#")[0]), *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
                preexec_fn=_die_with_parent,
            )
        process = Process(name, popen, log)
        self.processes.append(process)
        return process

    def _wait(
        self, what: str, check: Any, process: Process | None = None, timeout: float = START_TIMEOUT
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process is not None and process.popen.poll() is not None:
                raise ControlPlaneError(
                    f"{process.name} exited with {process.popen.returncode}:\n{process.tail()}"
                )
            with contextlib.suppress(OSError, ValueError, ControlPlaneError):
                if check():
                    return
            time.sleep(0.1)
        tail = process.tail() if process else ""
        raise ControlPlaneError(f"{what} not ready within {timeout:.0f}s\n{tail}")

    def _start(self, crds: list[Path]) -> None:
        started = time.monotonic()
        certs = self.workdir / "pki"
        certs.mkdir(exist_ok=True)
        self.ca_file, serving_cert, serving_key, sa_key, sa_pub = _certificates(certs)

        etcd_port, peer_port = free_port(), free_port()
        etcd = self._spawn(
            "etcd",
            [
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
                f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
                f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-cluster=default=http://127.0.0.1:{peer_port}",
                "--unsafe-no-fsync",
                "--quota-backend-bytes=4294967296",
                "--log-level=warn",
            ],
        )
        self._wait("etcd", lambda: _http_ok(f"http://127.0.0.1:{etcd_port}/health"), etcd)

        tokens = {"admin": secrets.token_urlsafe(32)}
        tokens.update({name: secrets.token_urlsafe(32) for name in COMPONENTS})
        token_file = self.workdir / "tokens.csv"
        rows = [f"{tokens['admin']},admin,admin,system:masters"]
        rows += [f"{tokens[name]},system:{name},{name},system:masters" for name in COMPONENTS]
        _write_pem(token_file, ("\n".join(rows) + "\n").encode())
        self.admin_token = tokens["admin"]
        audit_policy = self.workdir / "audit-policy.yaml"
        audit_policy.write_text(yaml.safe_dump(_AUDIT_POLICY))
        self.audit_log = self.workdir / "audit.log"

        port = free_port()
        self.server = f"https://127.0.0.1:{port}"
        apiserver = self._spawn(
            "kube-apiserver",
            [
                f"--etcd-servers=http://127.0.0.1:{etcd_port}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={port}",
                f"--tls-cert-file={serving_cert}",
                f"--tls-private-key-file={serving_key}",
                f"--token-auth-file={token_file}",
                "--authorization-mode=RBAC",
                # Its not-ready taint is lifted by the node lifecycle controller, which needs real nodes.
                "--disable-admission-plugins=TaintNodesByCondition",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={sa_pub}",
                f"--service-account-signing-key-file={sa_key}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                f"--audit-policy-file={audit_policy}",
                f"--audit-log-path={self.audit_log}",
                "--audit-log-format=json",
                "--audit-log-mode=blocking",
                "--allow-privileged=true",
                "--profiling=false",
                # No request queueing (priority and fairness): an overload is a 429 at once, which the
                # operator must retry, not a wait; and less apiserver CPU on 2 cores.
                "--enable-priority-and-fairness=false",
                "--event-ttl=1h",
                f"--cert-dir={self.workdir / 'apiserver-certs'}",
            ],
        )
        self._wait("kube-apiserver /readyz", lambda: self._get("/readyz", raw=True) == "ok", apiserver)
        self.version = str(self._get("/version")["gitVersion"])
        for crd in crds:
            self.install_crd(yaml.safe_load(crd.read_text()))

        configs = {}
        for name in COMPONENTS:
            configs[name] = self.workdir / f"{name}.kubeconfig"
            configs[name].write_text(
                yaml.safe_dump(kubeconfig(self.server, self.ca_file, tokens[name], name))
            )
        self.kubeconfig = self.workdir / "admin.kubeconfig"
        self.write_kubeconfig(self.kubeconfig)

        kcm_port = free_port()
        kcm = self._spawn(
            "kube-controller-manager",
            [
                f"--kubeconfig={configs['kube-controller-manager']}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={kcm_port}",
                f"--cert-dir={self.workdir / 'kcm-certs'}",
                # What makes workloads real without nodes of our own: no node lifecycle, IPAM, cloud.
                "--controllers=deployment,replicaset,garbagecollector,namespace,serviceaccount,"
                "disruption,endpointslice,podgc,horizontalpodautoscaling,statefulset,job",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--concurrent-deployment-syncs=10",
                "--concurrent-replicaset-syncs=10",
                "--concurrent-gc-syncs=20",
                # The HPA controller acts every 15 s by default: tests wait less for it.
                "--horizontal-pod-autoscaler-sync-period=2s",
                "--kube-api-qps=500",
                "--kube-api-burst=1000",
                "--profiling=false",
            ],
        )
        scheduler_port = free_port()
        scheduler = self._spawn(
            "kube-scheduler",
            [
                f"--kubeconfig={configs['kube-scheduler']}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={scheduler_port}",
                f"--cert-dir={self.workdir / 'scheduler-certs'}",
                "--kube-api-qps=500",
                "--kube-api-burst=1000",
                "--profiling=false",
            ],
        )
        kwok = self._spawn(
            "kwok",
            [
                f"--kubeconfig={configs['kwok']}",
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                "--manage-nodes-with-label-selector=",
                "--manage-single-node=",
                "--cidr=10.0.1.0/24",
                "--node-ip=10.0.1.1",
                "--node-lease-duration-seconds=40",
                f"--server-address=127.0.0.1:{free_port()}",
            ],
        )
        self._wait("kube-controller-manager", lambda: _http_ok(f"https://127.0.0.1:{kcm_port}/healthz"), kcm)
        self._wait(
            "kube-scheduler", lambda: _http_ok(f"https://127.0.0.1:{scheduler_port}/healthz"), scheduler
        )
        self.request("POST", "/api/v1/nodes", _node())
        self._wait("the kwok node", self._node_ready, kwok)
        self._wait(
            "the default ServiceAccount",
            lambda: self._get("/api/v1/namespaces/default/serviceaccounts/default"),
        )
        self.start_seconds = time.monotonic() - started

    def install_crd(self, crd: Mapping[str, Any], timeout: float = 30) -> None:
        """Create (or replace) a CRD and wait until the apiserver serves its resource."""
        name = crd["metadata"]["name"]
        url = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
        try:
            self.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
        except ControlPlaneError as err:
            if err.status != 409:
                raise
            current = self._get(url)
            self.request(
                "PUT",
                url,
                {
                    **crd,
                    "metadata": {
                        **crd["metadata"],
                        "resourceVersion": current["metadata"]["resourceVersion"],
                    },
                },
            )
        spec = crd["spec"]
        served = f"/apis/{spec['group']}/{spec['versions'][0]['name']}/{spec['names']['plural']}"

        def ready() -> bool:
            conditions = {
                c["type"]: c["status"] for c in (self._get(url).get("status") or {}).get("conditions") or []
            }
            return conditions.get("Established") == "True" and bool(self._get(served))

        self._wait(f"CRD {name}", ready, timeout=timeout)

    def stop(self) -> None:
        """Stop every process, the last started first: the apiserver hangs if etcd goes before it.
        What does not stop in 5 s is killed."""
        for process in reversed(self.processes):
            if process.popen.poll() is None:
                process.popen.send_signal(signal.SIGTERM)
                try:
                    process.popen.wait(5)
                except subprocess.TimeoutExpired:
                    process.popen.kill()
                    process.popen.wait()
        self.processes.clear()

    def check_alive(self) -> None:
        for process in self.processes:
            if process.popen.poll() is not None:
                raise ControlPlaneError(
                    f"{process.name} exited with {process.popen.returncode}:\n{process.tail()}"
                )

    # ------------------------------------------------------------------ access

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def write_kubeconfig(
        self,
        path: Path,
        token: str | None = None,
        user: str = "admin",
        namespace: str = "default",
        server: str | None = None,
    ) -> Path:
        """A kubeconfig for this cluster (or `server`, e.g. a proxy in front of it), admin by default."""
        path.parent.mkdir(parents=True, exist_ok=True)
        config = kubeconfig(server or self.server, self.ca_file, token or self.admin_token, user, namespace)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)
        return path

    def service_account_token(self, namespace: str, name: str, seconds: int = 3600 * 24) -> str:
        """A bound token for a ServiceAccount (what a pod of that account would hold)."""
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": seconds},
        }
        answer = self.request("POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token", body)
        return str(answer["status"]["token"])

    def audit_events(self, user: str | None = None) -> list[dict[str, Any]]:
        """The audit log's events (one per request, at ResponseComplete), optionally of one user."""
        events = []
        with contextlib.suppress(FileNotFoundError), self.audit_log.open() as log:
            for line in log:
                event = json.loads(line)
                if user is None or event.get("user", {}).get("username") == user:
                    events.append(event)
        return events

    def request(
        self, method: str, path: str, body: Mapping[str, Any] | None = None, raw: bool = False
    ) -> Any:
        """One admin request, synchronously (for fixtures and setup); ControlPlaneError on >= 400."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - https to our own apiserver
            self.server + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.admin_token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, context=self.ssl_context(), timeout=10) as response:  # noqa: S310
                text = response.read().decode()
        except urllib.error.HTTPError as err:
            raise ControlPlaneError(
                f"{method} {path}: {err.code} {err.read().decode()[:500]}", err.code
            ) from None
        return text if raw else json.loads(text)

    def _get(self, path: str, raw: bool = False) -> Any:
        return self.request("GET", path, raw=raw)

    def _node_ready(self) -> bool:
        node = self._get(f"/api/v1/nodes/{NODE_NAME}")
        return any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in node.get("status", {}).get("conditions", [])
        )


def _http_ok(url: str) -> bool:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the components' self-signed health endpoints
    with urllib.request.urlopen(url, context=context, timeout=2) as response:  # noqa: S310
        return bool(response.status == 200)


def _node() -> dict[str, Any]:
    """One fake Node that kwok manages; big enough for the benchmark's thousand runner pods."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": NODE_NAME,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": NODE_NAME,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            },
        },
        "status": {
            "allocatable": {"cpu": "2000", "memory": "8Ti", "pods": "5000"},
            "capacity": {"cpu": "2000", "memory": "8Ti", "pods": "5000"},
        },
    }


def main() -> None:
    """`python -m aiassistant_devtools.controlplane`: start one, print how to reach it, until Ctrl-C."""
    with ControlPlane.running() as cluster:
        print(f"control plane up in {cluster.start_seconds:.1f}s: {cluster.server}")
        print(f"  kubectl --kubeconfig {cluster.kubeconfig} get nodes")
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(1)
                cluster.check_alive()


if __name__ == "__main__":
    main()
    os._exit(0)
