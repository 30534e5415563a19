import json
from pathlib import Path

import msgspec
import pytest

from fd2.control.manifests.compile import content_digest, declarations
from fd2.control.manifests.decode import ManifestError, decode_manifest
from fd2.control.manifests.models import ModuleManifest, ProjectManifest

EXAMPLES = Path(__file__).parents[2] / "examples" / "manifests"


def load(name):
    return (EXAMPLES / name).read_bytes()


def test_reference_project_manifest_decodes():
    manifest = decode_manifest(load("acme.json"), origin="acme.json")
    assert isinstance(manifest, ProjectManifest)
    assert manifest.project_id == "acme"
    assert [m.name for m in manifest.modules] == [
        "vault-manager",
        "auth",
        "chat",
        "embed",
        "observability",
        "legacy",
    ]
    assert manifest.modules[5].status == "disabled"
    assert manifest.modules[2].dependencies == ["auth"]


def test_reference_module_manifest_decodes():
    manifest = decode_manifest(load("billing-assistant.module.json"), origin="billing")
    assert isinstance(manifest, ModuleManifest)
    assert manifest.runtime.implementation == "fd2_inference.InferenceModule"
    assert manifest.endpoints["staging"].fallback == "http://127.0.0.1:9103/v1"
    assert manifest.timeouts is not None and manifest.timeouts.total_s == 300
    assert [r.required for r in manifest.configuration_references] == [True, False, False]


def test_declarations_cover_every_environment_in_canonical_form():
    acme = declarations(
        decode_manifest(load("acme.json"), origin="a"), origin="a", default_env="development"
    )
    chat = next(d for d in acme if d.module == "chat")
    assert chat.environments == ("development", "staging", "production")
    assert chat.default_environment == "development"
    billing = declarations(
        decode_manifest(load("billing-assistant.module.json"), origin="b"),
        origin="b",
        default_env="development",
    )
    assert billing[0].environments == ("development", "staging", "production")
    assert billing[0].default_environment == "development"


def test_values_the_control_tower_may_leave_null_are_tolerated():
    raw = json.loads(load("acme.json"))
    raw.update(project_name=None, owner=None, metadata=None, version=1.3)
    raw["environments"]["qa"] = None  # an entry that is not an object names no environment
    raw["modules"][0].update(dependencies=None, config=None, description=None, status="archived")
    manifest = decode_manifest(json.dumps(raw).encode(), origin="x")
    decls = declarations(manifest, origin="x", default_env="development")
    assert decls[0].status == "archived"
    assert "qa" not in decls[0].environments


def test_unknown_fields_are_tolerated():
    raw = json.loads(load("acme.json"))
    raw["something_new"] = {"x": 1}
    raw["modules"][0]["extra"] = True
    assert isinstance(decode_manifest(json.dumps(raw).encode(), origin="x"), ProjectManifest)


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda m: m.update(project_id="../etc"), "project_id"),
        (lambda m: m["modules"][0].update(config=["not", "a", "map"]), "$.modules[0].config"),
        (lambda m: m["modules"][0].update(status=3), "$.modules[0].status"),
        (lambda m: m["modules"].append(dict(m["modules"][0])), "appears twice"),
        (lambda m: m["modules"][1].pop("name"), "name"),
        (lambda m: m.update(environments=[]), "$.environments"),
    ],
)
def test_invalid_project_manifests_name_the_field(mutate, fragment):
    raw = json.loads(load("acme.json"))
    mutate(raw)
    with pytest.raises(ManifestError) as info:
        decode_manifest(json.dumps(raw).encode(), origin="acme.json")
    assert fragment in info.value.message
    assert info.value.message.startswith("acme.json: ")


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"[1, 2]", "not a JSON object"),
        (b"{not json", "not a JSON object"),
        (b'{"name": "x"}', "neither a project manifest"),
        (
            b'{"module_type": "x", "project": "p", "module": "m", "timeouts": {"read_s": -1}}',
            "read_s",
        ),
    ],
)
def test_garbage_is_rejected_clearly(data, fragment):
    with pytest.raises(ManifestError, match=fragment):
        decode_manifest(data, origin="f.json")


def test_digest_ignores_timestamps_and_key_order_but_not_content():
    raw = json.loads(load("acme.json"))
    base = content_digest(raw)
    stamped = dict(raw, created_at="2026-01-01T00:00:00", updated_at="2026-11-22T05:00:00")
    assert content_digest(stamped) == base
    assert content_digest(dict(reversed(list(raw.items())))) == base
    changed = json.loads(json.dumps(raw))
    changed["modules"][2]["config"]["temperature"] = 0.3
    assert content_digest(changed) != base


def test_manifest_structs_are_immutable():
    manifest = decode_manifest(load("acme.json"), origin="a")
    with pytest.raises(AttributeError):
        manifest.project_id = "other"  # type: ignore[misc]
    assert msgspec.structs.asdict(manifest)["project_id"] == "acme"
