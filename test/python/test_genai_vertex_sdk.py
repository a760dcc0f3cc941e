"""
google-genai 3.6.1's Vertex AI tuning (`client.tunings`) against the fake Vertex AI service,
unchanged: the dataset goes up through the fake Cloud Storage JSON API, then tune → get →
list → cancel on the SDK's default API version, with epoch_count set.
"""

import json

import pytest

genai = pytest.importorskip("google.genai")
from google.genai import types  # noqa: E402
from google.oauth2.credentials import Credentials  # noqa: E402

requests = pytest.importorskip("requests")


@pytest.fixture(scope="module")
def client(fakes):
    lines = [
        json.dumps(
            {
                "contents": [
                    {"role": "user", "parts": [{"text": str(i)}]},
                    {"role": "model", "parts": [{"text": str(i + 1)}]},
                ]
            }
        )
        for i in range(24)
    ]
    upload = requests.post(
        f"{fakes.vertex_url}/upload/storage/v1/b/py-bucket/o",
        params={"uploadType": "media", "name": "tuning/train.jsonl"},
        data="\n".join(lines).encode(),
        headers={
            "Authorization": f"Bearer {fakes.access_token}",
            "Content-Type": "application/jsonl",
        },
        timeout=10,
    )
    upload.raise_for_status()
    return genai.Client(
        vertexai=True,
        project="py-project",
        location="us-central1",
        credentials=Credentials(token=fakes.access_token),
        http_options=types.HttpOptions(base_url=fakes.vertex_url),
    )


def test_tune_get_list_cancel(client):
    job = client.tunings.tune(
        base_model="gemini-2.5-flash",
        training_dataset=types.TuningDataset(gcs_uri="gs://py-bucket/tuning/train.jsonl"),
        config=types.CreateTuningJobConfig(epoch_count=2, tuned_model_display_name="py tuned"),
    )
    assert job.name.startswith("projects/py-project/locations/us-central1/tuningJobs/")
    assert job.state == types.JobState.JOB_STATE_PENDING
    got = client.tunings.get(name=job.name)
    assert got.tuned_model_display_name == "py tuned"
    assert got.supervised_tuning_spec.hyper_parameters.epoch_count == 2
    assert job.name in [j.name for j in client.tunings.list(config={"page_size": 10})]
    client.tunings.cancel(name=job.name)
    state = client.tunings.get(name=job.name).state
    for _ in range(10):
        if state == types.JobState.JOB_STATE_CANCELLED:
            break
        state = client.tunings.get(name=job.name).state
    assert state == types.JobState.JOB_STATE_CANCELLED


def test_tune_to_success(client):
    job = client.tunings.tune(
        base_model="gemini-2.5-flash",
        training_dataset=types.TuningDataset(gcs_uri="gs://py-bucket/tuning/train.jsonl"),
        config=types.CreateTuningJobConfig(epoch_count=1),
    )
    for _ in range(50):
        job = client.tunings.get(name=job.name)
        if job.has_ended:
            break
    assert job.state == types.JobState.JOB_STATE_SUCCEEDED
    assert job.tuned_model.endpoint.startswith("projects/py-project/locations/us-central1/endpoints/")
