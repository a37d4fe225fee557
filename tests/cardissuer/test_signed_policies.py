"""The issuer signs the counter policies into its bundle, and keeps them stable across restarts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from cardissuer.core.config import Settings
from cardissuer.main import create_app
from verifier import Bundle


def test_bundle_carries_issuer_signed_policies(
    client: TestClient, service_settings: Settings
) -> None:
    document = client.get("/bundle.json").json()
    assert len(document["signed_policies"]) == 1
    now = datetime.now(UTC)
    bundle = Bundle.from_json(document, at=now)
    assert bundle.policies["bk"].max_status_age == timedelta(hours=24)
    # A restarted service publishes the same signed policies, so counters accept its bundles.
    restarted = create_app(service_settings)
    try:
        with TestClient(restarted) as again:
            later = again.get("/bundle.json").json()
    finally:
        restarted.state.engine.dispose()
    assert later["signed_policies"] == document["signed_policies"]
    bundle.update(later, at=datetime.now(UTC))
