"""discovery/roles.py: the built-in roles, as agent files and read back from them."""
from __future__ import annotations

from pathlib import Path

from envoy.discovery import roles


def test_agent_files_read_back_as_the_roles(tmp_path: Path) -> None:
    agents = tmp_path / ".claude" / "agents"
    agents.mkdir(parents=True)
    for role in roles.ROLES:
        text = roles.agent_file(role)
        assert text.startswith(f"---\nname: {role.name}\n")
        (agents / f"{role.name}.md").write_text(text)
        loaded = roles.load_agent(tmp_path, role.name)
        assert loaded is not None
        assert (loaded.name, loaded.description, loaded.tools) == (role.name, role.description, role.tools)
        assert role.scope in loaded.scope and "read-only" in loaded.scope
    assert roles.agent_names(tmp_path) == ["curator", "explorer", "researcher"]
    assert roles.load_agent(tmp_path, "missing") is None
    (agents / "any.md").write_text("---\nname: any\ndescription: all tools\n---\n")
    anything = roles.load_agent(tmp_path, "any")
    assert anything is not None and anything.tools == roles.ALLOWED_TOOLS and anything.scope == "all tools"
    assert [r.name for r in roles.ROLES if "WebSearch" in r.tools] == ["researcher"]


def test_agent_files_pass_envoys_own_validator() -> None:
    from envoy.hooks import validate_skill as skills  # envoy's own module: failing to import it is a failure
    for role in roles.ROLES:
        assert skills.problems(f".claude/agents/{role.name}.md", roles.agent_file(role)) == []
