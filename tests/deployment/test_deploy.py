"""The Kubernetes manifests as Kustomize renders them (`kubectl kustomize`, no cluster): every
container's environment is what its settings class reads, HTTP services are probed on
/healthz and /readyz, everything asks for resources and runs as non-root, consumers have
replicas within the topic's partitions, and the production overlay refuses the example secret."""

import base64
import re
import shutil
import subprocess
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
SETTINGS: dict[str, type[ServiceSettings] | type[WebSettings]] = {
    "services.case.api:app": CaseSettings,
    "services.case.run_relay": CaseSettings,
    "services.obligations.api:app": ObligationsSettings,
    "services.reporting.api:app": ReportingSettings,
    "services.web.app:app": WebSettings,
}
KUBECTL = shutil.which("kubectl")


def render(overlay: str, tmp_path: Path) -> list[dict]:
    """The overlay's manifests; the production overlay with each *-secrets.env made from its
    example, as OPERATIONS.md tells the deployer to."""
    assert KUBECTL, "kubectl (with its built-in kustomize) is needed to render deploy/"
    deploy = tmp_path / "deploy"
    shutil.copytree(ROOT / "deploy", deploy, ignore=shutil.ignore_patterns("*secrets.env"))
    for example in (deploy / overlay).glob("*secrets.env.example"):
        shutil.copy(example, example.with_suffix(""))
    answer = subprocess.run([KUBECTL, "kustomize", str(deploy / overlay)], capture_output=True, text=True, timeout=60)
    assert answer.returncode == 0, answer.stderr
    return [d for d in yaml.safe_load_all(answer.stdout) if d]


def of_kind(documents: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in documents if d["kind"] == kind}


def environment(container: dict, documents: list[dict]) -> dict[str, str]:
    """What the container's process finds in its environment: envFrom, then env (a value, or one
    key of a ConfigMap)."""
    config_maps, secrets = of_kind(documents, "ConfigMap"), of_kind(documents, "Secret")
    values: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            values.update(config_maps[source["configMapRef"]["name"]]["data"])
        else:
            # the base only refers to the Secret; an overlay makes it
            data = secrets.get(source["secretRef"]["name"], {}).get("data", {})
            values.update({k: base64.b64decode(v).decode().strip() for k, v in data.items()})
    for e in container.get("env", []):
        if "value" in e:
            values[e["name"]] = e["value"]
        else:
            ref = e["valueFrom"]["configMapKeyRef"]
            values[e["name"]] = config_maps[ref["name"]]["data"][ref["key"]]
    return values


def settings_class(container: dict) -> type[ServiceSettings] | type[WebSettings]:
    (module,) = [part for part in container["command"] if part in SETTINGS]
    return SETTINGS[module]


@pytest.fixture(scope="module", params=["base", "overlays/production"])
def rendered(request, tmp_path_factory) -> tuple[str, list[dict]]:
    return request.param, render(request.param, tmp_path_factory.mktemp("kustomize"))


def test_the_five_processes_of_the_one_image(rendered):
    _, documents = rendered
    deployments = of_kind(documents, "Deployment")
    assert set(deployments) == {"case", "relay", "obligations", "reporting", "web"}
    for deployment in deployments.values():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["image"].rpartition(":")[2] not in ("", "latest")
        assert settings_class(container)


def test_every_environment_variable_is_a_setting_the_process_reads(rendered, monkeypatch):
    overlay, documents = rendered
    for name, deployment in of_kind(documents, "Deployment").items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        cls = settings_class(container)
        env = environment(container, documents)
        assert set(env) <= {f.upper() for f in cls.model_fields}, f"{name}: not settings of {cls.__name__}"
        assert env["ENVIRONMENT"] == ("production" if overlay.endswith("production") else "development")
        for key in {f.upper() for f in cls.model_fields}:
            monkeypatch.delenv(key, raising=False)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        if cls is WebSettings:
            if overlay.endswith("production"):  # the example's placeholder session key must not get through
                with pytest.raises(ValueError, match="SESSION_KEY"):
                    cls()
                monkeypatch.setenv("SESSION_KEY", "s" * 48)
            settings = cls()
            assert settings.auth_jwks_url and not settings.development_sign_in  # the identity provider's keys
            continue
        if overlay.endswith("production") and cls is CaseSettings:
            # the example's placeholder keys must not get through: the deployer replaces them
            with pytest.raises(ValueError, match="PSEUDONYM_KEY"):
                cls()
            monkeypatch.setenv("PSEUDONYM_KEY", "k" * 48)
            with pytest.raises(ValueError, match="CASE_STORE_KEY"):
                cls()
            monkeypatch.setenv("CASE_STORE_KEY", base64.b64encode(bytes(range(32))).decode())
        else:
            monkeypatch.setenv("DATABASE_URL", "postgresql://frisag@postgres:5432/frisag")  # from the overlay
        settings = cls()
        assert settings.kafka_bootstrap_servers and settings.otel_exporter_otlp_endpoint


def test_http_services_are_probed_and_reachable_through_their_service(rendered):
    _, documents = rendered
    services = of_kind(documents, "Service")
    for name in ("case", "obligations", "reporting"):
        (container,) = of_kind(documents, "Deployment")[name]["spec"]["template"]["spec"]["containers"]
        port = int(container["command"][container["command"].index("--port") + 1])
        assert container["ports"] == [{"name": "http", "containerPort": port}]
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert services[name]["spec"]["ports"] == [{"name": "http", "port": port, "targetPort": "http"}]
        assert services[name]["spec"]["selector"] == {"app.kubernetes.io/name": name}
    # the web service holds nothing it must be ready with: it answers while it lives (a page says when an API is down)
    (container,) = of_kind(documents, "Deployment")["web"]["spec"]["template"]["spec"]["containers"]
    assert container["command"][container["command"].index("--port") + 1] == "8000"
    assert container["ports"] == [{"name": "http", "containerPort": 8000}]
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert services["web"]["spec"]["ports"] == [{"name": "http", "port": 8000, "targetPort": "http"}]
    assert services["web"]["spec"]["selector"] == {"app.kubernetes.io/name": "web"}


def test_the_web_service_calls_the_apis_through_their_services_and_holds_no_key_or_database(rendered):
    _, documents = rendered
    (container,) = of_kind(documents, "Deployment")["web"]["spec"]["template"]["spec"]["containers"]
    env = environment(container, documents)
    services = of_kind(documents, "Service")
    for name in ("case", "obligations", "reporting"):
        (port,) = services[name]["spec"]["ports"]
        assert env[f"{name.upper()}_URL"] == f"http://{name}:{port['port']}"
    assert not {"CASE_STORE_KEY", "PSEUDONYM_KEY", "DATABASE_URL"} & set(env)
    (config,) = [c for name, c in of_kind(documents, "ConfigMap").items() if name.startswith("frisag-config")]
    for key in ("ENVIRONMENT", "AUTH_JWKS_URL", "AUTH_ISSUER", "AUTH_AUDIENCE"):  # the APIs' own: one source
        assert env[key] == config["data"][key], key


def test_every_container_asks_for_resources_and_runs_locked_down(rendered):
    _, documents = rendered
    for name, deployment in of_kind(documents, "Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        (container,) = pod["containers"]
        assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
        assert {"cpu", "memory"} <= set(container["resources"]["limits"]), name
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_the_catalogs_come_from_config_maps_where_they_are_read(rendered):
    _, documents = rendered
    for name in ("obligations", "reporting"):
        pod = of_kind(documents, "Deployment")[name]["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        catalog = environment(container, documents)["CATALOG_DIR"]
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        for part in ("rules", "trials"):
            volume = volumes[mounts[f"{catalog}/{part}"]]
            assert volume["configMap"]["name"] == f"frisag-catalog-{part}"


def test_production_runs_replicas_of_the_consumers_within_the_partitions(tmp_path):
    documents = render("overlays/production", tmp_path)
    deployments = of_kind(documents, "Deployment")
    (config,) = [c for name, c in of_kind(documents, "ConfigMap").items() if name.startswith("frisag-config")]
    partitions = int(config["data"]["KAFKA_TOPIC_PARTITIONS"])
    for name in ("obligations", "reporting"):
        assert 2 <= deployments[name]["spec"]["replicas"] <= partitions
    assert deployments["case"]["spec"]["replicas"] >= 2
    images = {c["image"] for d in deployments.values() for c in d["spec"]["template"]["spec"]["containers"]}
    assert len(images) == 1 and not images.pop().startswith("frisag:")  # the partner's registry
    budgets = of_kind(documents, "PodDisruptionBudget")
    assert set(budgets) == set(deployments)


def test_one_secret_per_service_and_only_the_case_service_and_relay_get_the_keys(tmp_path):
    """Rendered as deployed: each Deployment reads its own service's Secret, and only the case
    service and the relay (part of it) find CASE_STORE_KEY and PSEUDONYM_KEY in their environment."""
    documents = render("overlays/production", tmp_path)
    secrets = of_kind(documents, "Secret")
    owners = {"case": "case", "relay": "case", "obligations": "obligations", "reporting": "reporting", "web": "web"}
    keys = {"CASE_STORE_KEY", "PSEUDONYM_KEY"}
    for name, deployment in of_kind(documents, "Deployment").items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        refs = [source["secretRef"]["name"] for source in container["envFrom"] if "secretRef" in source]
        assert len(refs) == 1 and refs[0].startswith(f"frisag-{owners[name]}-secrets"), (name, refs)
        assert refs[0] in secrets, f"{name}: its Secret {refs[0]} is not rendered"
        given = keys & set(environment(container, documents))
        assert given == (keys if owners[name] == "case" else set()), (name, given)
    # the consumers' Secrets are not the case service's: another database role, no keys
    urls = {name: base64.b64decode(secret["data"]["DATABASE_URL"]).decode() for name, secret in secrets.items()
            if not name.startswith(("frisag-postgres-admin", "frisag-web"))}  # the roles' Job's, the web's: no DATABASE_URL
    (web,) = [secret for name, secret in secrets.items() if name.startswith("frisag-web-secrets")]
    assert set(web["data"]) == {"SESSION_KEY"}
    assert len(set(urls.values())) == 3


def test_a_job_creates_the_database_role_each_services_secret_logs_in_as(tmp_path):
    """The roles come from the script compose runs too (deploy/base/postgres-roles.sh, tested on
    PostgreSQL in tests/integration/test_database_roles.py): the Job runs it with the database
    owner's Secret, which holds every variable it reads; each service's DATABASE_URL logs in as
    the role the script creates for it."""
    documents = render("overlays/production", tmp_path)
    script = (ROOT / "deploy" / "base" / "postgres-roles.sh").read_text()
    job = of_kind(documents, "Job")["postgres-roles"]
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    (volume,) = pod["volumes"]
    assert container["command"] == ["sh", "/scripts/postgres-roles.sh"]
    assert container["volumeMounts"] == [{"name": volume["name"], "mountPath": "/scripts", "readOnly": True}]
    assert of_kind(documents, "ConfigMap")[volume["configMap"]["name"]]["data"] == {"postgres-roles.sh": script}
    assert container["image"].rpartition(":")[2] not in ("", "latest")
    assert pod["securityContext"]["runAsNonRoot"] is True
    read = set(re.findall(r"\$(\w+)", script)) | {"PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE"}
    assert read <= set(environment(container, documents)), read - set(environment(container, documents))
    roles = set(re.findall(r"ALTER ROLE (\w+) PASSWORD", script))
    assert roles == {"frisag_case", "frisag_obligations", "frisag_reporting"}
    secrets = of_kind(documents, "Secret")
    for name, deployment in of_kind(documents, "Deployment").items():
        (app,) = deployment["spec"]["template"]["spec"]["containers"]
        if name == "web":  # no database
            continue
        owner = "case" if name == "relay" else name
        assert urlsplit(environment(app, documents)["DATABASE_URL"]).username == f"frisag_{owner}", name
    assert any(name.startswith("frisag-postgres-admin") for name in secrets)
