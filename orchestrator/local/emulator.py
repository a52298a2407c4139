"""The AWS API emulator (moto in server mode, with provisioned concurrency added:
orchestrator/local/provisioned.py) on 127.0.0.1, shared by every command.

It speaks HTTPS with a certificate made for this machine (trusted through
AWS_CA_BUNDLE), because the model bucket's policy denies plain HTTP, as in AWS.
"""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path
from typing import Any, cast

from orchestrator.local import daemon

DEFAULT_PORT = 4566
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
# moto accepts any credentials; fixed ones keep boto3 from looking for real ones.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "edgeship-local",
    "AWS_SECRET_ACCESS_KEY": "edgeship-local",
    "AWS_DEFAULT_REGION": REGION,
}


def running(state_dir: Path) -> daemon.Daemon | None:
    """The emulator of state_dir if it runs and answers. Its process is alive (daemon.read),
    so a slow answer is a busy machine, not a dead emulator: it gets 10 s (with 1 s, a look
    during a load test on a 2-core CI machine once called a live emulator gone, and the
    command said to run `up` again). A dead port still fails at once."""
    found = daemon.read(state_dir / "emulator.json")
    cert = state_dir / "tls" / "cert.pem"
    if found and cert.exists() and daemon.healthy(found.url + "/moto-api/", timeout=10.0, ca=cert):
        return found
    return None


def ensure(state_dir: Path) -> daemon.Daemon:
    """The running emulator, started if needed (stale state and busy ports handled)."""
    state_file = state_dir / "emulator.json"
    cert, key = certificate(state_dir)
    found = running(state_dir)
    if found:
        return found

    def argv(port: int) -> list[str]:
        # moto's server, with provisioned concurrency added (orchestrator/local/motoserver.py)
        return [daemon.python(), "-m", "orchestrator.local.motoserver", "-H", "127.0.0.1", "-p", str(port), "-c", str(cert), "-k", str(key)]  # fmt: skip

    # No identity check needed: another project's emulator fails our TLS verification (its
    # certificate is its own), so its answer on our port never counts as ours.
    return daemon.start(
        "emulator",
        argv,
        state_file,
        state_dir / "emulator.log",
        "/moto-api/",
        DEFAULT_PORT,
        scheme="https",
        ca=cert,
    )


def certificate(state_dir: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made once."""
    tls = state_dir / "tls"
    cert, key = tls / "cert.pem", tls / "key.pem"
    if cert.exists() and key.exists():
        return cert, key
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "edgeship local emulator")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(private, hashes.SHA256())
    )
    tls.mkdir(parents=True, exist_ok=True)
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key.chmod(0o600)
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return cert, key


def stop(state_dir: Path) -> bool:
    """Stop the emulator; its data (in memory) is gone with it."""
    return daemon.stop(state_dir / "emulator.json")


def client(service: str, endpoint: str, ca: Path | None = None) -> Any:
    """A real boto3 client pointed at the emulator (trusting its certificate)."""
    import boto3
    from botocore.config import Config

    from orchestrator.base import netfaults

    return netfaults.install(  # inert unless a test armed EDGESHIP_NETFAULT
        boto3.client(
            cast(Any, service),  # one helper for every service the local target uses
            endpoint_url=endpoint,
            verify=str(ca) if ca else None,
            region_name=REGION,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            config=Config(
                retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=2, read_timeout=30
            ),
        )
    )
