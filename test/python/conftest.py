"""
Fixtures of the dev-only Python suite: Google's Python SDKs against tunekit's fakes.

The fakes come from the environment (TUNEKIT_FAKE_GEMINI_URL, TUNEKIT_FAKE_VERTEX_URL, set by
test/python/python-sdks.test.ts, which starts them in-process) or, when those are unset, from
two `tunekit fake-server` processes started here (build first: `npm run build`).
"""

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
API_KEY = os.environ.get("TUNEKIT_FAKE_API_KEY", "test-api-key")
ACCESS_TOKEN = os.environ.get("TUNEKIT_FAKE_ACCESS_TOKEN", "test-access-token")


@dataclass
class Fakes:
    gemini_url: str
    vertex_url: str
    api_key: str
    access_token: str


def _start(args):
    cli = ROOT / "dist" / "cli" / "main.js"
    if not cli.exists():
        pytest.skip(f"{cli} is missing: run `npm run build` first (or set TUNEKIT_FAKE_*_URL)")
    process = subprocess.Popen(
        ["node", str(cli), "--json", "fake-server", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith("}"):
            break
    return process, json.loads("".join(lines))


@pytest.fixture(scope="session")
def fakes():
    gemini_url = os.environ.get("TUNEKIT_FAKE_GEMINI_URL")
    vertex_url = os.environ.get("TUNEKIT_FAKE_VERTEX_URL")
    started = []
    if not gemini_url:
        process, info = _start(["--api-key", API_KEY])
        started.append(process)
        gemini_url = info["url"]
    if not vertex_url:
        process, info = _start(["--vertex", "--access-token", ACCESS_TOKEN, "--steps-per-poll", "1"])
        started.append(process)
        vertex_url = info["url"]
    yield Fakes(gemini_url, vertex_url, API_KEY, ACCESS_TOKEN)
    for process in started:
        process.terminate()
        process.wait(timeout=10)


def pytest_report_header(config):
    return f"python {sys.version.split()[0]}"
