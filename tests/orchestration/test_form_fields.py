"""Optional text parameters are plain text boxes in the deployments' run forms, not a `str | None`
toggle, and a box left empty means "not set" in every flow."""

from __future__ import annotations

from typing import Any

import pytest
from prefect.utilities.schema_tools.validation import validate

from hubpress.deployments.serve import build_deployments
from hubpress.flows.params import (
    PublishDatasetParams,
    PublishLoraParams,
    RefreshParams,
    ReleaseTrainingRunParams,
)
from hubpress.testdata.synth import write_dataset

OPTIONAL_TEXT = {
    "PublishDatasetParams": {"staging", "tag", "pretty_name", "commit_message"},
    "PublishLoraParams": {"remote_name", "tag", "base_model", "license", "commit_message"},
    "ReleaseTrainingRunParams": {"tag", "base_model", "license"},
    "RefreshParams": {"staging", "tag", "pretty_name", "commit_message"},
}


def _forms() -> dict[str, dict[str, Any]]:
    """Each served deployment's parameter schema: what the Prefect UI renders its run form from."""
    return {d.flow_name: d._parameter_openapi_schema.model_dump() for d in build_deployments() if d.flow_name}


def _has_null(schema: Any) -> bool:
    if isinstance(schema, dict):
        if schema.get("type") == "null" or schema.get("default", "") is None:
            return True
        return any(_has_null(value) for value in schema.values())
    if isinstance(schema, list):
        return any(_has_null(value) for value in schema)
    return False


def test_no_form_field_offers_a_null_toggle():
    forms = _forms()
    assert {"publish-dataset", "publish-lora", "release-training-run"} <= set(forms)
    seen = set()
    for flow_name, schema in forms.items():
        for model, definition in schema.get("definitions", {}).items():
            for name, field in definition["properties"].items():
                assert not _has_null(field), f"{flow_name}: {model}.{name} is a null toggle: {field}"
                if name in OPTIONAL_TEXT.get(model, ()):
                    assert field["type"] == "string" and "default" not in field, (flow_name, name, field)
                    seen.add((model, name))
    assert {(m, n) for m, names in OPTIONAL_TEXT.items() for n in names if m != "RefreshParams"} <= seen


def test_the_server_accepts_empty_null_and_text_for_an_optional_field():
    """Prefect's server checks a run's parameters against the same schema (enforce_parameter_schema)."""
    schema = _forms()["publish-dataset"]
    for tag in ("", None, "v1"):
        params = {"params": {"source": "./src", "target": "org/name", "tag": tag}}
        assert validate(params, schema, raise_on_error=False) == [], tag
    refused = validate({"params": {"source": "./src", "target": "org/name", "tag": 3}}, schema)
    assert refused


@pytest.mark.parametrize(
    "model, required",
    [
        (PublishDatasetParams, {"source": "./src", "target": "org/name"}),
        (PublishLoraParams, {"src_path": "./w.safetensors", "target": "org/name"}),
        (ReleaseTrainingRunParams, {"output_uri": "./run", "repo_id": "org/name"}),
        (RefreshParams, {"config": "./backends.json", "target": "org/name"}),
    ],
)
def test_an_empty_box_is_not_set(model, required):
    names = OPTIONAL_TEXT[model.__name__]
    for empty in ("", "  "):
        params = model(**required, **dict.fromkeys(names, empty))
        assert all(getattr(params, name) is None for name in names)
    assert model(**required, tag="v1").tag == "v1"
    with pytest.raises(ValueError):
        model(**required, tag="bad tag")  # a value is still checked


def test_a_run_with_the_boxes_left_empty_runs_as_if_unset(tmp_cwd, prefect_harness):
    """What the form sends when the optional boxes are left empty: the run publishes, untagged
    (an empty tag would otherwise be refused as a ref), with the default staging."""
    from hubpress.flows.publish_dataset import publish_dataset

    write_dataset(tmp_cwd / "src", samples=3, test_fraction=0.0, image_size=16, seed=5)
    form = {"source": str(tmp_cwd / "src"), "target": "./out"}
    form.update(dict.fromkeys(OPTIONAL_TEXT["PublishDatasetParams"], ""))
    result = publish_dataset(form)  # a dict, as a deployment run passes it: the flow validates it
    assert result["commit"] and not result.get("tag")
    assert (tmp_cwd / "out" / "README.md").exists()


def test_saved_deployment_parameters_pass_the_servers_check():
    """A deployment's saved parameters are checked by plain JSON-schema validation when it is
    applied (no null where the schema says string), unlike a run's: they leave unset fields out."""
    import jsonschema

    checked = 0
    for deployment in build_deployments():
        if deployment.parameters:
            schema = deployment._parameter_openapi_schema.model_dump()
            jsonschema.validate(deployment.parameters, schema)
            checked += 1
    assert checked
    with_null = {"params": {"source": "s3://b/p", "target": "org/name", "tag": None}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(with_null, _forms()["publish-dataset"])
