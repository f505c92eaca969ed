"""A brand's own destination type, found through the entry-point group, with no fork."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.conftest import ServerFactory, read_jsonl, wait_for

PLUGIN = """
from pathlib import Path

from collector.config import DestinationConfig
from collector.delivery.destinations.base import SendResult


class AcmeConfig(DestinationConfig, frozen=True, kw_only=True, tag="acme"):
    inbox: str


class AcmeDestination:
    config_type = AcmeConfig

    def __init__(self, config, *, data_dir, **_):
        self.name = config.name
        self._inbox = Path(config.inbox)

    async def send(self, messages):
        with self._inbox.open("ab") as fh:
            fh.write(b"".join(m + b"\\n" for m in messages))
        return SendResult(True)

    async def close(self):
        return None
"""


def test_entry_point_destination_type(server_factory: ServerFactory, tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "acme_dest").mkdir(parents=True)
    (site / "acme_dest" / "__init__.py").write_text(PLUGIN)
    dist = site / "acme_dest-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-dest\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[consentry.destinations]\nacme = acme_dest:AcmeDestination\n"
    )
    inbox = tmp_path / "acme" / "inbox.jsonl"
    inbox.parent.mkdir()
    config = textwrap.dedent(f"""
        [[destinations]]
        name = "acme"
        type = "acme"
        purposes = ["analytics"]
        inbox = "{inbox}"
    """)
    server = server_factory(config, env={"PYTHONPATH": f"{site}"}).start()
    r = server.post(
        "/v1/track",
        {
            "userId": "plug",
            "event": "E",
            "messageId": "plug-1",
            "context": {"consent": {"categoryPreferences": {"analytics": True}}},
        },
    )
    assert r.status_code == 200
    lines = wait_for(lambda: read_jsonl(inbox.parent))
    assert lines and lines[0]["messageId"] == "plug-1" and lines[0]["userId"].startswith("ps1.")


def test_unknown_plugin_type_names_the_key(tmp_path: Path) -> None:
    from collector.config import parse
    from collector.errors import ConfigError

    try:
        parse('[[destinations]]\nname = "x"\ntype = "acme"\n')
    except ConfigError as exc:
        assert "destinations[0].type" in str(exc) and "acme" in str(exc)
    else:
        raise AssertionError("expected a ConfigError")
