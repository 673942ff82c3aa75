from pathlib import Path

from core.settings import Settings
from server.config_docs import render

DOC = Path(__file__).resolve().parents[2] / "docs" / "CONFIGURATION.md"


def test_configuration_doc_is_generated_from_the_settings():
    assert DOC.read_text() == render(), "run: universe-mcp config docs > docs/CONFIGURATION.md"


def test_every_setting_has_a_description():
    assert all(f.description for f in Settings.model_fields.values())


def test_secrets_are_secret_strings(monkeypatch):
    monkeypatch.setenv("UNIVERSE_MCP_ALPHA_VANTAGE_API_KEY", "AVKEY123")
    monkeypatch.setenv("UNIVERSE_MCP_DATABASE_URL", "postgresql+asyncpg://app:pw123@db/universe")
    s = Settings()
    assert "AVKEY123" not in repr(s) and "pw123" not in repr(s)
    assert "pw123" not in s.describe_store()
