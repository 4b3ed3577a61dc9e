"""A small real SavedModel in TF Serving's layout, trained for a few steps (not the pipeline)."""
from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from pipeline.config import PipelineConfig

MODEL_NAME = PipelineConfig().model_name


@dataclasses.dataclass(frozen=True)
class ExportedModels:
    """Two versions of the model, differently trained, exported once per session."""

    store: Path
    rows: list[dict[str, str]]

    def version_dir(self, version: int) -> Path:
        return self.store / str(version)

    def install(self, base_path: Path, version: int) -> Path:
        """Copies a version into a model base path, saved_model.pb last (as the Pusher does)."""
        target = base_path / str(version)
        shutil.copytree(self.version_dir(version), target,
                        ignore=shutil.ignore_patterns("saved_model.pb"))
        shutil.copy2(self.version_dir(version) / "saved_model.pb", target / "saved_model.pb")
        return target


@pytest.fixture(scope="session")
def exported_models(tmp_path_factory, taxi_rows) -> ExportedModels:
    import numpy as np
    import tensorflow as tf

    from models import features
    from models.export import export_serving_model
    from models.inputs import parse_examples
    from models.model import HParams, build_model, fit_feature_stats
    from serving.client import rows_to_examples

    _, rows = taxi_rows
    train_rows = rows[:1024]
    parsed = parse_examples(tf.constant(rows_to_examples(train_rows)), with_label=False)
    columns = {name: tensor.numpy() for name, tensor in parsed.items()}
    labels = np.array([features.is_big_tipper(float(r["tips"]) if r["tips"] else None,
                                              float(r["fare"]) if r["fare"] else None)
                       for r in train_rows], dtype=np.float32)
    hparams = HParams(hidden_units=(16,), batch_size=128)
    model = build_model(fit_feature_stats(columns, hparams), hparams)
    store = tmp_path_factory.mktemp("exports")
    for version in (1, 2):
        model.fit(columns, labels, batch_size=hparams.batch_size, epochs=1, verbose=0)
        export_serving_model(model, str(store / str(version)))
    return ExportedModels(store, rows[2000:2040])


@dataclasses.dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path


def _self_signed(directory: Path, name: str) -> Certificate:
    """A self-signed certificate for 127.0.0.1 / localhost, valid for one day."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    paths = Certificate(directory / f"{name}.crt", directory / f"{name}.key")
    paths.cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    paths.key.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                            serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
    return paths


@pytest.fixture(scope="session")
def certificates(tmp_path_factory) -> dict[str, Certificate]:
    """A server certificate, a client certificate and an unrelated one (a wrong CA)."""
    directory = tmp_path_factory.mktemp("tls")
    return {name: _self_signed(directory, name) for name in ("server", "client", "stranger")}
