"""
google-generativeai 0.8.6 with transport="rest" against the fake Gemini API, unchanged: the
tuning tutorial flow, update_tuned_model, safety settings and permissions. This SDK's REST
transport sends `$alt=json;enum-encoding=int` and integer enums, and reads the replies back.
"""

import pytest

genai = pytest.importorskip("google.generativeai")
from google.api_core import exceptions  # noqa: E402

Role = genai.protos.Permission.Role
TRAINING = [{"text_input": str(i), "output": str(i + 1)} for i in range(1, 21)]


@pytest.fixture(scope="module")
def tuned(fakes):
    genai.configure(
        api_key=fakes.api_key,
        transport="rest",
        client_options={"api_endpoint": fakes.gemini_url},
    )
    base = [
        m for m in genai.list_models() if "createTunedModel" in m.supported_generation_methods
    ][0]
    operation = genai.create_tuned_model(
        source_model=base.name,
        training_data=TRAINING,
        id="increment-py",
        display_name="increment",
        description="adds one",
        epoch_count=5,
        batch_size=4,
        learning_rate=0.001,
    )
    statuses = list(operation.wait_bar(disable=True))
    result = operation.result()
    return {"operation": operation, "statuses": statuses, "model": result}


def test_tutorial_flow_create_wait_snapshots_generate(tuned):
    result = tuned["model"]
    assert result.name == "tunedModels/increment-py"
    assert result.state == genai.types.TunedModelState.ACTIVE
    assert tuned["statuses"], "wait_bar yielded the running statuses"
    assert tuned["operation"].metadata.total_steps == 25
    snapshots = result.tuning_task.snapshots
    assert len(snapshots) == 25
    losses = [snapshot["mean_loss"] for snapshot in snapshots]
    assert losses == sorted(losses, reverse=True)
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame(snapshots)
    assert list(frame["step"]) == list(range(1, 26))
    model = genai.GenerativeModel(model_name=result.name)
    assert model.generate_content("5").text == "6"
    chunks = [chunk.text for chunk in model.generate_content("something new", stream=True)]
    assert "".join(chunks) == "tunedModels/increment-py says: something new"


def test_get_list_and_update_tuned_model(tuned):
    name = tuned["model"].name
    assert name in [m.name for m in genai.list_tuned_models()]
    updated = genai.update_tuned_model(name, {"description": "adds one, updated"})
    assert updated.description == "adds one, updated"
    assert genai.get_tuned_model(name).description == "adds one, updated"
    assert genai.get_tuned_model(name).state == genai.types.TunedModelState.ACTIVE


def test_safety_settings(tuned):
    model = genai.GenerativeModel(model_name=tuned["model"].name)
    response = model.generate_content(
        "7",
        safety_settings={"HARASSMENT": "block_none", "DANGEROUS": "block_only_high"},
        generation_config={"temperature": 0.2, "max_output_tokens": 20},
    )
    assert response.text == "8"


def test_permissions(tuned):
    model = genai.get_tuned_model(tuned["model"].name)
    permissions = model.permissions
    created = permissions.create(role="reader", grantee_type="user", email_address="a@example.com")
    assert created.role == Role.READER
    everyone = permissions.create(role="reader", grantee_type="everyone")
    listed = list(permissions.list())
    assert {p.name for p in listed} >= {created.name, everyone.name}
    owner = [p for p in listed if p.role == Role.OWNER]
    assert len(owner) == 1
    fetched = genai.types.Permissions.get(created.name)
    assert fetched.email_address == "a@example.com"
    fetched.update({"role": Role.WRITER})
    assert genai.types.Permissions.get(created.name).role == Role.WRITER
    everyone.delete()
    with pytest.raises(exceptions.NotFound):
        genai.types.Permissions.get(everyone.name)
    permissions.transfer_ownership(email_address="new-owner@example.com")
    roles = {p.email_address: p.role for p in permissions.list()}
    assert roles["new-owner@example.com"] == Role.OWNER


def test_errors_are_typed(tuned):
    with pytest.raises(exceptions.NotFound):
        genai.get_tuned_model("tunedModels/does-not-exist")
    with pytest.raises(exceptions.Conflict, match="already exists"):
        genai.create_tuned_model(
            source_model="models/gemini-1.5-flash-001-tuning",
            training_data=TRAINING,
            id="increment-py",
        )
