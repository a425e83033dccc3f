"""The platform around the app: configuration from the environment, health, deployment files."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS"}}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=120
    )


def test_refuses_to_start_on_the_development_secret_key_without_debug():
    result = run_manage("check", DEBUG="0")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_deploy_check_reports_nothing_serious_with_debug_off():
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="0",
        SECRET_KEY="production-secret-9f8e7d6c5b4a3f2e1d0c-7a6b5c4d3e2f1a0b9c8d",
        ALLOWED_HOSTS="segments.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_a_bad_boolean_in_the_environment_fails_loudly():
    result = run_manage("check", DEBUG="maybe")
    assert result.returncode != 0
    assert "DEBUG must be a boolean" in result.stderr


def test_healthz_reports_database_and_in_process_broker(client, db, settings):
    settings.CELERY_BROKER_URL = ""
    body = client.get("/healthz").json()
    assert body == {"status": "ok", "database": "ok", "broker": "in-process (no broker configured)"}


def test_healthz_reports_a_reachable_redis_broker(client, db, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/14"
    response = client.get("/healthz")
    assert response.status_code == 200, response.content
    assert response.json()["broker"] == "ok"


def test_healthz_answers_503_when_the_broker_is_down(client, db, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["broker"].startswith("error")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def readme() -> str:
    return (ROOT / "README.md").read_text()


def test_compose_has_the_production_services(compose):
    assert {"postgres", "redis", "web", "worker", "beat"} <= set(compose["services"])


def test_compose_services_run_the_commands_the_readme_documents(compose, readme):
    production = readme.split("## Production", 1)[1]
    for name in ("migrate", "web", "worker", "beat"):
        command = compose["services"][name]["command"]
        assert command in production, f"{name}: {command!r} is not in the README's production section"


def test_compose_sets_every_variable_the_readme_table_requires(compose, readme):
    environment = compose["services"]["web"]["environment"]
    for variable in ("DATABASE_URL", "CELERY_BROKER_URL", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS"):
        assert variable in environment
        assert re.search(rf"^\| `{variable}` \|", readme, re.MULTILINE), f"{variable} missing from README table"
    assert environment["DEBUG"] == "0"


def test_every_environment_variable_the_settings_read_is_in_the_readme_table(readme):
    settings_source = (ROOT / "config" / "settings.py").read_text()
    read = set(re.findall(r'(?:env_bool|env_int|env_list|os\.environ\.get)\(\s*"([A-Z_]+)"', settings_source))
    table = "\n".join(line for line in readme.splitlines() if line.startswith("| `"))
    missing = sorted(name for name in read if f"`{name}`" not in table)
    assert missing == []


def test_the_openapi_schema_validates_without_warnings(tmp_path):
    target = tmp_path / "schema.yml"
    result = run_manage("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    assert result.returncode == 0, result.stdout + result.stderr
    schema = yaml.safe_load(target.read_text())
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            success = {code: r for code, r in operation["responses"].items() if code.startswith("2")}
            assert success, f"{method} {path} documents no success answer"
            for code, response in success.items():
                described = code == "204" or "schema" in next(iter(response.get("content", {}).values()), {})
                assert described or response.get("description"), f"{method} {path} {code}: no body described"


def test_the_docs_page_and_the_schema_are_served(client, db):
    assert client.get("/api/v1/docs/").status_code == 200
    assert client.get("/api/v1/schema/").status_code == 200
