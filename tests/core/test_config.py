"""config.py: settings from the environment and .claude/settings*.json, validated."""
from __future__ import annotations

import json

import pytest

from envoy.config import Config
from envoy.errors import EnvoyError


def test_config_reads_env_block_and_allow_rules(tmp_path):
    (tmp_path / ".claude").mkdir()
    (tmp_path / ".claude" / "settings.json").write_text(json.dumps(
        {"env": {"PARALLEL_MAX_WORKERS": "4"}, "permissions": {"allow": ["A", "B"]}}))
    (tmp_path / ".claude" / "settings.local.json").write_text(json.dumps({"permissions": {"allow": ["C", "A"]}}))
    config = Config(tmp_path, environ={})
    assert config.get("PARALLEL_MAX_WORKERS") == 4
    assert config.get("PARALLEL_WORKER_PREFIX") == "claude-worker-"
    assert config.allow_rules() == ["A", "B", "C"]
    with pytest.raises(EnvoyError) as exc:
        Config(tmp_path, environ={"PARALLEL_WORKER_PREFIX": "a/b"}).get("PARALLEL_WORKER_PREFIX")
    assert exc.value.kind == "invalid_config"


def test_the_default_cap_is_3_as_documented(tmp_path):
    """README: PARALLEL_MAX_WORKERS defaults to 3. Every other cap test sets it itself."""
    assert Config(tmp_path, environ={}).get("PARALLEL_MAX_WORKERS") == 3
