import json
import os
import shutil
from pathlib import Path

import aiohttp
import pytest

from fd2.control.registry import ModuleRegistry
from fd2.control.route_builder import RouteBuilder
from fd2.control.secrets import SecretResolver
from fd2.control.sources.local import LocalDirectorySource, _may_block
from fd2.module import Timeouts

EXAMPLES = Path(__file__).parents[2] / "examples" / "manifests"


@pytest.fixture
async def watched(tmp_path):
    for name in ("acme.json", "billing-assistant.module.json"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    async with aiohttp.ClientSession() as http:
        builder = RouteBuilder(
            registry=ModuleRegistry(classes={"unused": object}),  # serves nothing: structure only
            secrets=SecretResolver(environ={}),
            http=http,
            default_environment="development",
            base_timeouts=Timeouts(),
            environ={},
        )
        watcher = LocalDirectorySource(tmp_path, builder)
        await watcher.sync()
        yield tmp_path, watcher, builder


def write(path: Path, data: dict) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(data))
    os.replace(temporary, path)


async def test_directory_loads_both_formats(watched):
    _, watcher, builder = watched
    assert watcher.projects == {"acme", "billing"}
    assert ("billing", "assistant") in builder.table.groups
    assert ("acme", "chat") in builder.table.groups


async def test_changed_file_rebuilds_only_its_project(watched):
    directory, watcher, builder = watched
    billing_group = builder.table.groups[("billing", "assistant")]
    raw = json.loads((directory / "acme.json").read_text())
    raw["modules"].append({"module_type": "inference_endpoint", "name": "extra", "config": {}})
    write(directory / "acme.json", raw)
    await watcher.sync()
    assert ("acme", "extra") in builder.table.groups
    assert builder.table.groups[("billing", "assistant")] is billing_group


async def test_timestamps_alone_do_not_rebuild(watched):
    directory, watcher, builder = watched
    version = builder.table.version
    raw = json.loads((directory / "acme.json").read_text())
    raw["updated_at"] = "2026-11-22T06:00:00Z"
    write(directory / "acme.json", raw)
    await watcher.sync()
    assert builder.table.version == version


async def test_broken_file_keeps_its_last_good_version(watched, caplog):
    directory, watcher, builder = watched
    (directory / "acme.json").write_text('{"project_id": "acme", "modules": [ {')
    await watcher.sync()
    assert ("acme", "chat") in builder.table.groups
    assert "acme.json is invalid" in caplog.text and "keeping its last good version" in caplog.text


async def test_deleted_file_removes_its_project(watched):
    directory, watcher, builder = watched
    (directory / "billing-assistant.module.json").unlink()
    await watcher.sync()
    assert "billing" not in builder.table.projects
    assert watcher.projects == {"acme"}


async def test_new_file_is_picked_up(watched):
    directory, watcher, builder = watched
    write(
        directory / "new.json",
        {"project_id": "newco", "modules": [{"module_type": "monitoring", "name": "m"}]},
    )
    await watcher.sync()
    assert "newco" in builder.table.projects


async def test_the_directory_answers_as_a_manifest_source(watched):
    directory, watcher, builder = watched
    assert watcher.usable() and watcher.serves("acme") and not watcher.serves("nosuch")
    await watcher.lookup("nosuch")  # loads everything up front: nothing to look up, no error
    assert await watcher.refresh("nosuch") is None  # not its project: another source may have it
    answer = await watcher.refresh("acme")
    assert answer == {"project": "acme", "source": "directory", "digest": builder.digest("acme")}
    assert watcher.describe() == {"path": str(directory), "usable": True}
    assert list(watcher.failing(frozenset())) == []
    shutil.rmtree(directory)
    await watcher.sync()
    assert not watcher.usable()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b'{"api_key": "env:KEY", "url": "https://x/v1"}', False),
        (b'{"api_key": "file:/run/secrets/key"}', None),
        (b'{"api_key": "vault:kv/app#key"}', None),
        (b'{"api_key": "encrypted:abc"}', None),
        (b'{"config": {"x": "config:y"}}', None),
        # An escape can spell a scheme ("file:" here): not known from the text.
        (b'{"api_key": "\\u0066ile:/run/secrets/key"}', None),
    ],
)
def test_a_file_names_a_blocking_reference_only_in_its_text(text, expected):
    assert _may_block(text) is expected
