"""docker-compose.yml and the Dockerfile, read as files (no Docker engine here): every service's
environment is what its settings class reads and accepts, images are pinned, start order waits
on health checks that exist, and the ports are the ones the README tells people to open."""

import base64
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from services.case.settings import CaseSettings
from services.obligations.settings import ObligationsSettings
from services.reporting.settings import ReportingSettings
from services.web.settings import WebSettings
from shared.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
# which settings class a Frisag process reads, by the module its command runs
SETTINGS: dict[str, type[ServiceSettings] | type[WebSettings]] = {
    "services.case.api:app": CaseSettings,
    "services.case.run_relay": CaseSettings,
    "services.obligations.api:app": ObligationsSettings,
    "services.reporting.api:app": ReportingSettings,
    "services.web.app:app": WebSettings,
}


def interpolated(value: object, variables: dict[str, str] | None = None) -> str:
    """A compose value with `${NAME:-default}` resolved as compose would, from `variables`."""
    variables = variables or {}
    return re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: variables.get(m[1], m[2]), str(value))


def frisag_services() -> dict[str, dict]:
    return {name: s for name, s in SERVICES.items() if s.get("image", "").startswith("frisag:")}


def settings_of(service: dict) -> type[ServiceSettings] | type[WebSettings]:
    (module,) = [part for part in service["command"] if part in SETTINGS]
    return SETTINGS[module]


def test_every_frisag_process_is_a_known_command_of_the_one_image():
    services = frisag_services()
    assert set(services) == {"case", "relay", "obligations", "reporting", "web"}
    for service in services.values():
        assert service["build"] == "." and settings_of(service)


@pytest.mark.parametrize("name", ["case", "relay", "obligations", "reporting"])
def test_each_environment_is_read_and_accepted_by_the_services_settings(name, monkeypatch):
    service = SERVICES[name]
    settings_class = settings_of(service)
    environment = {key: interpolated(value) for key, value in service["environment"].items()}
    fields = {field.upper() for field in settings_class.model_fields}
    assert set(environment) <= fields, f"{name}: not settings of {settings_class.__name__}"
    for key in list(fields):
        monkeypatch.delenv(key, raising=False)
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    settings = settings_class()
    # the production shape: PostgreSQL and Kafka, traces to the collector
    assert "@postgres:5432/" in settings.database_url
    assert settings.kafka_bootstrap_servers == "kafka:9092"
    assert settings.otel_exporter_otlp_endpoint.startswith("http://otel-collector:")

    # as the file says: the demo key and the development signing key are for development only
    monkeypatch.setenv("ENVIRONMENT", "production")
    with pytest.raises(ValueError, match="AUTH_JWKS_URL"):
        settings_class()
    monkeypatch.setenv("AUTH_JWKS_URL", "https://login.example.dk/certs")
    if settings_class is CaseSettings:
        with pytest.raises(ValueError, match="PSEUDONYM_KEY"):
            settings_class()
        monkeypatch.setenv("PSEUDONYM_KEY", "x" * 48)
        with pytest.raises(ValueError, match="CASE_STORE_KEY"):
            settings_class()
        monkeypatch.setenv("CASE_STORE_KEY", base64.b64encode(bytes(range(32))).decode())
        with pytest.raises(ValueError, match="RETENTION_AFTER_CLOSE_DAYS"):
            settings_class()
        monkeypatch.setenv("RETENTION_AFTER_CLOSE_DAYS", "1826")
    assert settings_class().environment == "production"


def test_the_web_service_calls_the_apis_by_their_names_and_holds_no_key_nor_database(monkeypatch):
    web = SERVICES["web"]
    assert settings_of(web) is WebSettings
    environment = {key: interpolated(value) for key, value in web["environment"].items()}
    assert set(environment) <= {field.upper() for field in WebSettings.model_fields}
    assert not {"PSEUDONYM_KEY", "CASE_STORE_KEY", "DATABASE_URL"} & set(environment)
    for name in ("case", "obligations", "reporting"):
        port = SERVICES[name]["command"][SERVICES[name]["command"].index("--port") + 1]
        assert environment[f"{name.upper()}_URL"] == f"http://{name}:{port}"
        assert web["depends_on"][name] == {"condition": "service_healthy"}
    assert web["command"][-1] == "8000" and web["ports"] == ["8000:8000"]
    assert "http://localhost:8000/healthz" in " ".join(web["healthcheck"]["test"])
    # the development signing key the APIs check, to sign users in with (development only)
    assert "dev-auth:/app/var/auth" in web["volumes"]
    for key in {field.upper() for field in WebSettings.model_fields}:
        monkeypatch.delenv(key, raising=False)
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    assert WebSettings().development_sign_in and WebSettings().session_key is None  # unset: a new key each start
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("AUTH_JWKS_URL", "https://login.example.dk/certs")
    with pytest.raises(ValueError, match="SESSION_KEY"):  # production: set one
        WebSettings()
    monkeypatch.setenv("SESSION_KEY", "s" * 48)
    with pytest.raises(ValueError, match="OIDC_CLIENT_ID"):  # production: sign in through the identity provider
        WebSettings()
    monkeypatch.setenv("OIDC_CLIENT_ID", "frisag-web")
    monkeypatch.setenv("AUTH_ISSUER", "https://login.example.dk")
    monkeypatch.setenv("WEB_BASE_URL", "https://frisag.example.dk")
    assert WebSettings().environment == "production"


def test_only_the_case_service_and_its_relay_get_the_keys_that_read_a_citizen():
    keys = {"PSEUDONYM_KEY", "CASE_STORE_KEY"}
    for name, service in frisag_services().items():
        given = keys & set(service["environment"])
        if settings_of(service) is CaseSettings:
            assert "PSEUDONYM_KEY" in given, name
        else:
            assert not given, f"{name} must not hold {given}"


def test_the_topic_is_created_as_the_services_name_it_with_the_configured_partitions():
    environment = SERVICES["case"]["environment"]
    command = [interpolated(part, {"KAFKA_TOPIC_PARTITIONS": "12"}) for part in SERVICES["kafka-topics"]["command"]]
    assert command[command.index("--topic") + 1] == environment["KAFKA_TOPIC"]
    assert command[command.index("--partitions") + 1] == "12"
    assert interpolated(environment["KAFKA_TOPIC_PARTITIONS"], {"KAFKA_TOPIC_PARTITIONS": "12"}) == "12"
    assert SERVICES["kafka"]["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_images_are_pinned():
    for name, service in SERVICES.items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and re.fullmatch(r"\d+(\.\d+)+(-[a-z0-9.-]+)?", tag), f"{name}: {image} is not pinned"
    dockerfile = (ROOT / "Dockerfile").read_text()
    (base,) = re.findall(r"^FROM (\S+)", dockerfile, re.MULTILINE)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", base)
    users = re.findall(r"^USER (\S+)", dockerfile, re.MULTILINE)
    assert users and users[-1] not in ("root", "0")


def test_start_order_waits_on_health_checks_that_exist():
    for name, service in SERVICES.items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in SERVICES, f"{name} depends on unknown {dependency}"
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in SERVICES[dependency], f"{dependency} has no health check"
            if condition["condition"] == "service_completed_successfully":
                assert SERVICES[dependency]["restart"] == "no"
    for name in ("case", "obligations", "reporting"):
        service = SERVICES[name]
        port = service["command"][service["command"].index("--port") + 1]
        assert f"http://localhost:{port}/readyz" in " ".join(service["healthcheck"]["test"])
        assert service["ports"] == [f"{port}:{port}"]
        assert {"postgres", "kafka-topics"} <= set(service["depends_on"])


def test_the_published_ports_are_the_ones_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    published = [port.split(":")[0] for service in SERVICES.values() for port in service.get("ports", [])]
    assert sorted(published) == ["16686", "8000", "8001", "8002", "8003"]
    for port in published:
        assert f"http://localhost:{port}" in readme, f"README does not say what is on port {port}"


def test_mounted_files_and_the_collectors_pipeline_exist():
    (mount,) = SERVICES["otel-collector"]["volumes"]
    source, target, _ = mount.split(":")
    config = yaml.safe_load((ROOT / source).read_text())
    assert target == "/etc/otelcol/config.yaml"
    exporter = config["exporters"][config["service"]["pipelines"]["traces"]["exporters"][0]]
    assert exporter["endpoint"].split(":")[0] == "jaeger"
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318")


def test_each_process_logs_in_as_its_services_role_which_the_database_creates_at_init():
    postgres = SERVICES["postgres"]
    mounts = {target: source for source, target, *_ in (volume.split(":") for volume in postgres["volumes"])}
    script = ROOT / mounts["/docker-entrypoint-initdb.d/roles.sh"]
    assert script == ROOT / "deploy" / "base" / "postgres-roles.sh"  # the one Kubernetes' Job runs
    variables = {key: interpolated(value) for key, value in postgres["environment"].items()}
    assert set(re.findall(r"\$(\w+)", script.read_text())) <= set(variables)
    for name, service in frisag_services().items():
        if name == "web":  # no database
            continue
        owner = "case" if name == "relay" else name
        url = urlsplit(interpolated(service["environment"]["DATABASE_URL"]))
        assert url.username == f"frisag_{owner}", name
        assert url.password == variables[f"{owner.upper()}_DB_PASSWORD"], name
        assert f"ALTER ROLE frisag_{owner} PASSWORD" in script.read_text()
