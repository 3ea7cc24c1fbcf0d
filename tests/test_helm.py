"""deploy/helm/safety rendered (with ``helm template`` when helm is installed, else with the small
Go-template subset below, which is all the chart uses) and checked against the code the way
tests/test_compose.py checks docker-compose.yml: queues from celery_config, setting names from
app/config.py, health routes that exist, commands that exist, screening scaled on its stream."""

from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import pytest
import yaml

from app import streams
from app.config import Settings

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "deploy" / "helm" / "safety"
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
RELEASE = "mod"
EXTRA_SETTINGS = {"PROMETHEUS_MULTIPROC_DIR"}


# -- A Go-template subset: {{ pipeline }}, trim markers, comments, if/else, range, define/include,
# -- and the functions include, toYaml, quote, nindent, indent, default, eq, ne, and, or, not.

@dataclass
class Node:
    kind: str  # text | action | if | range | define
    text: str = ""
    body: list[Node] = field(default_factory=list)
    orelse: list[Node] = field(default_factory=list)


TAG = re.compile(r"{{(-?)\s*(.*?)\s*(-?)}}", re.S)


def tokens(source: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos, trim_next = 0, False
    for match in TAG.finditer(source):
        text = source[pos:match.start()]
        if trim_next:
            text = text.lstrip()
        if match.group(1):
            text = text.rstrip()
        out.append(("text", text))
        if not match.group(2).startswith("/*"):
            out.append(("tag", match.group(2)))
        pos, trim_next = match.end(), bool(match.group(3))
    tail = source[pos:]
    out.append(("text", tail.lstrip() if trim_next else tail))
    return out


def parse(items: list[tuple[str, str]], pos: int = 0, stop: tuple[str, ...] = ()) -> tuple[list[Node], int, str]:
    nodes: list[Node] = []
    while pos < len(items):
        kind, value = items[pos]
        pos += 1
        if kind == "text":
            nodes.append(Node("text", value))
            continue
        word = value.split(None, 1)[0]
        if word in stop:
            return nodes, pos, word
        if word in ("if", "range", "define"):
            node = Node(word, value.split(None, 1)[1])
            node.body, pos, ended = parse(items, pos, ("end", "else"))
            if ended == "else":
                node.orelse, pos, _ = parse(items, pos, ("end",))
            nodes.append(node)
        else:
            nodes.append(Node("action", value))
    return nodes, pos, ""


@dataclass
class Scope:
    dot: Any
    root: dict[str, Any]
    names: dict[str, Any]
    defines: dict[str, list[Node]]


def split_args(text: str) -> list[str]:
    out, depth, quote, current = [], 0, False, ""
    for ch in text:
        if ch == '"' and not (current.endswith("\\")):
            quote = not quote
        if not quote and ch == "(":
            depth += 1
        if not quote and ch == ")":
            depth -= 1
        if ch.isspace() and not quote and depth == 0:
            if current:
                out.append(current)
            current = ""
        else:
            current += ch
    return [*out, current] if current else out


def lookup(value: Any, path: str) -> Any:
    for part in filter(None, path.split(".")):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def operand(token: str, scope: Scope) -> Any:
    if token.startswith('"'):
        return json.loads(token)
    if re.fullmatch(r"-?\d+", token):
        return int(token)
    if token.startswith("("):
        return pipeline(token[1:-1], scope)
    if token.startswith("$"):
        name, _, rest = token[1:].partition(".")
        return lookup(scope.root if not name else scope.names[name], rest)
    if token.startswith("."):
        return lookup(scope.dot, token)
    raise ValueError(f"unsupported operand {token!r}")


def truthy(value: Any) -> bool:
    return bool(value)


def to_yaml(value: Any) -> str:
    if value in ({}, []):
        return json.dumps(value)
    return yaml.safe_dump(value, default_flow_style=False, sort_keys=True).rstrip("\n")


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "toYaml": to_yaml,
    "quote": lambda v: json.dumps("" if v is None else str(v)),
    "nindent": lambda n, s: "\n" + "\n".join(" " * n + line for line in str(s).split("\n")),
    "indent": lambda n, s: "\n".join(" " * n + line for line in str(s).split("\n")),
    "default": lambda d, v: v if truthy(v) else d,
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "and": lambda *v: next((x for x in v if not truthy(x)), v[-1]),
    "or": lambda *v: next((x for x in v if truthy(x)), v[-1]),
    "not": lambda v: not truthy(v),
}


def pipeline(text: str, scope: Scope) -> Any:
    value: Any = None
    for index, command in enumerate(c.strip() for c in re.split(r'\|(?=(?:[^"]*"[^"]*")*[^"]*$)', text)):
        words = split_args(command)
        args = [operand(w, scope) for w in words[1:]] + ([value] if index else [])
        if words[0] == "include":
            value = render_nodes(scope.defines[args[0]], Scope(args[1], scope.root, {}, scope.defines))
        elif words[0] in FUNCTIONS:
            value = FUNCTIONS[words[0]](*args)
        else:
            assert index == 0 and len(words) == 1, command
            value = operand(words[0], scope)
    return value


def show(value: Any) -> str:
    if value is None:
        return ""
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def render_nodes(nodes: list[Node], scope: Scope) -> str:
    out = []
    for node in nodes:
        if node.kind == "text":
            out.append(node.text)
        elif node.kind == "action":
            out.append(show(pipeline(node.text, scope)))
        elif node.kind == "if":
            out.append(render_nodes(node.body if truthy(pipeline(node.text, scope)) else node.orelse, scope))
        elif node.kind == "range":
            out.append(render_range(node, scope))
    return "".join(out)


def render_range(node: Node, scope: Scope) -> str:
    names, _, expr = node.text.rpartition(":=")
    variables = [n.strip().lstrip("$") for n in names.split(",") if n.strip()]
    items = pipeline(expr if names else node.text, scope) or []
    pairs = sorted(items.items()) if isinstance(items, dict) else list(enumerate(items))
    out = []
    for key, value in pairs:
        bound = dict(scope.names)
        if len(variables) == 2:
            bound[variables[0]], bound[variables[1]] = key, value
        elif variables:
            bound[variables[0]] = value
        out.append(render_nodes(node.body, Scope(value, scope.root, bound, scope.defines)))
    return "".join(out)


def merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in overrides.items():
        out[key] = merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return out


def render_subset(overrides: dict[str, Any]) -> str:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    values = merge(yaml.safe_load((CHART / "values.yaml").read_text()), overrides)
    root = {"Values": values, "Release": {"Name": RELEASE, "Namespace": "default"},
            "Chart": {"Name": chart["name"], "Version": chart["version"], "AppVersion": chart["appVersion"]}}
    defines: dict[str, list[Node]] = {}
    templates = sorted((CHART / "templates").iterdir())
    for path in templates:
        for node in parse(tokens(path.read_text()))[0]:
            if node.kind == "define":
                defines[json.loads(node.text)] = node.body
    return "\n---\n".join(render_nodes(parse(tokens(path.read_text()))[0], Scope(root, root, {}, defines))
                          for path in templates if not path.name.startswith("_"))


def render(overrides: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    overrides = overrides or {}
    if shutil.which("helm"):
        values = Path(CHART.parent / ".test-values.json")
        values.write_text(json.dumps(overrides))
        try:
            text = subprocess.run(["helm", "template", RELEASE, str(CHART), "-f", str(values)], check=True,
                                  capture_output=True, text=True).stdout
        finally:
            values.unlink()
    else:
        text = render_subset(overrides)
    return [doc for doc in yaml.safe_load_all(text) if doc]


# -- The chart against the code.

DOCS = render()


def kinds(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def containers(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for d in docs if d["kind"] in ("Deployment", "Job") for c in d["spec"]["template"]["spec"]["containers"]]


def command(container: dict[str, Any]) -> list[str]:
    return [str(part) for part in container["command"] + (container.get("args") or [])]


def test_the_chart_mirrors_compose():
    deployments = kinds(DOCS, "Deployment")
    workers = {n.removeprefix("worker-") for n in COMPOSE["services"] if n.startswith("worker-")}
    assert set(deployments) == {f"{RELEASE}-{n}" for n in ("web", "beat", "flower")} | {
        f"{RELEASE}-worker-{q}" for q in workers}
    assert set(kinds(DOCS, "Job")) == {f"{RELEASE}-migrate"}
    assert set(kinds(DOCS, "Service")) == {f"{RELEASE}-web", f"{RELEASE}-flower"}


def test_one_worker_deployment_per_celery_queue():
    from tasks.celery_app import app as celery_app

    queues = {q.name for q in celery_app.conf.task_queues}
    served = []
    for c in containers(DOCS):
        cmd = command(c)
        if cmd[:4] == ["celery", "-A", "tasks.celery_app", "worker"]:
            queue = cmd[cmd.index("-Q") + 1]
            assert any(route["queue"] == queue for route in celery_app.conf.task_routes.values())
            served.append(queue)
    assert sorted(served) == sorted(queues)


def test_beat_runs_once_and_no_worker_embeds_it():
    beats = [c for c in containers(DOCS) if command(c)[3:4] == ["beat"] or "--beat" in command(c) or "-B" in command(c)]
    assert [command(c)[3] for c in beats] == ["beat"]
    beat = kinds(DOCS, "Deployment")[f"{RELEASE}-beat"]
    assert beat["spec"]["replicas"] == 1 and beat["spec"]["strategy"]["type"] == "Recreate"


def test_every_command_exists_in_the_code():
    for c in containers(DOCS):
        cmd = command(c)
        if cmd[0] == "gunicorn":
            config, target = cmd[cmd.index("--config") + 1], cmd[cmd.index("--config") + 2]
            module, attr = target.split(":")
            assert (ROOT / config).exists() and f"{attr} = create_app()" in (ROOT / f"{module}.py").read_text()
        elif cmd[0] == "celery":
            importlib.import_module(cmd[cmd.index("-A") + 1])
            assert cmd[3] in {"worker", "beat", "flower"}
        elif cmd[0] == "alembic":
            assert cmd[1:] == ["upgrade", "head"] and (ROOT / "migrations" / "env.py").exists()
        else:
            pytest.fail(f"unknown program {cmd[0]!r}")


def test_migrations_run_as_a_hook_job_before_upgrades():
    job = kinds(DOCS, "Job")[f"{RELEASE}-migrate"]
    assert command(job["spec"]["template"]["spec"]["containers"][0]) == ["alembic", "upgrade", "head"]
    assert "pre-upgrade" in job["metadata"]["annotations"]["helm.sh/hook"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_postgres_redis_and_qdrant_are_external():
    images = {c["image"] for c in containers(DOCS)}
    assert images == {"safety:latest"}
    assert not kinds(DOCS, "StatefulSet")


def every_value_set() -> list[dict[str, Any]]:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    return render({"env": {k: "x" for k in values["env"]}, "secretEnv": {k: "x" for k in values["secretEnv"]}})


def test_environment_uses_known_setting_names():
    known = {f.name for f in fields(Settings)} | EXTRA_SETTINGS
    docs = every_value_set()
    config = kinds(docs, "ConfigMap")[f"{RELEASE}-env"]["data"]
    secret = kinds(docs, "Secret")[f"{RELEASE}-secret"]["stringData"]
    assert set(config) | set(secret) <= known, (set(config) | set(secret)) - known
    assert {"DATABASE_URL", "REDIS_URL", "API_KEYS"} <= set(secret) and "QDRANT_HOST" in config
    compose_env = COMPOSE["services"]["web"]["environment"]
    assert set(compose_env) <= set(config) | set(secret), set(compose_env) - set(config) - set(secret)
    assert config["PROMETHEUS_MULTIPROC_DIR"] == "x"


def test_an_empty_value_leaves_the_codes_default():
    config = kinds(DOCS, "ConfigMap")[f"{RELEASE}-env"]["data"]
    assert "QDRANT_HOST" not in config and config["SCREENING_MODEL"] == "minilm-v5"
    assert kinds(DOCS, "Secret")[f"{RELEASE}-secret"]["stringData"] is None


def test_every_process_reads_the_settings_and_an_existing_secret_replaces_the_charts():
    for c in containers(DOCS):
        assert c["envFrom"] == [{"configMapRef": {"name": f"{RELEASE}-env"}},
                                {"secretRef": {"name": f"{RELEASE}-secret"}}]
    docs = render({"existingSecret": "prod-safety"})
    assert not kinds(docs, "Secret")
    assert all(c["envFrom"][1] == {"secretRef": {"name": "prod-safety"}} for c in containers(docs))


def test_web_probes_are_routes_that_exist():
    from app.config import get_settings, set_settings
    from web import create_app

    before = get_settings()
    try:
        rules = {r.rule for r in create_app({"API_KEYS": "k"}).url_map.iter_rules()}
    finally:
        set_settings(before)  # create_app sets the process-wide settings
    web = kinds(DOCS, "Deployment")[f"{RELEASE}-web"]["spec"]["template"]["spec"]["containers"][0]
    assert web["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert {"/healthz", "/readyz"} <= rules
    port = web["ports"][0]["containerPort"]
    assert web["command"][-1] == f"0.0.0.0:{port}"
    assert web["volumeMounts"][0]["mountPath"] == "/var/run/safety-metrics"


def test_screening_scales_on_its_consumer_group_with_keda():
    scaled = kinds(DOCS, "ScaledObject")[f"{RELEASE}-worker-screening"]
    assert scaled["spec"]["scaleTargetRef"]["name"] in kinds(DOCS, "Deployment")
    for trigger in scaled["spec"]["triggers"]:
        assert trigger["type"] == "redis-streams"
        assert (trigger["metadata"]["stream"], trigger["metadata"]["consumerGroup"]) == (
            streams.RAW, streams.SCREENING_GROUP)
    assert "replicas" not in kinds(DOCS, "Deployment")[f"{RELEASE}-worker-screening"]["spec"]


def test_screening_scales_on_the_exported_lag_with_an_hpa():
    docs = render({"autoscaling": {"screening": {"kind": "hpa"}}})
    assert not kinds(docs, "ScaledObject")
    hpa = kinds(docs, "HorizontalPodAutoscaler")[f"{RELEASE}-worker-screening"]
    assert hpa["spec"]["scaleTargetRef"]["name"] in kinds(docs, "Deployment")
    metric = hpa["spec"]["metrics"][0]["external"]["metric"]
    assert f'"{metric["name"]}"' in (ROOT / "web" / "health.py").read_text()  # exported by /metrics
    assert metric["selector"]["matchLabels"] == {"group": streams.SCREENING_GROUP}


def test_without_autoscaling_the_screening_workers_have_a_replica_count():
    docs = render({"autoscaling": {"screening": {"enabled": False}}})
    assert not kinds(docs, "ScaledObject") and not kinds(docs, "HorizontalPodAutoscaler")
    assert kinds(docs, "Deployment")[f"{RELEASE}-worker-screening"]["spec"]["replicas"] == 2


def test_the_template_subset_trims_ranges_and_includes():
    source = '{{- define "x" -}}[{{ .a }}]{{- end }}a:{{ range $k, $v := .m }} {{ $k }}={{ $v | quote }}{{ end }}' \
             '{{- if eq .a 1 }} one{{ else }} other{{ end }} {{ include "x" . }}'
    nodes = parse(tokens(source))[0]
    defines = {json.loads(n.text): n.body for n in nodes if n.kind == "define"}
    root = {"a": 1, "m": {"b": 2, "a": "x"}}
    assert render_nodes(nodes, Scope(root, root, {}, defines)) == 'a: a="x" b="2" one [1]'


def test_flower_serves_where_the_console_shows_it():
    """The console's /admin/flower/ proxies to FLOWER_URL under its own path (web/console/flower.py)."""
    from web.console.flower import PREFIX

    [flower] = [c for c in containers(DOCS) if c["name"] == "flower"]
    assert f"--url_prefix={PREFIX.strip('/')}" in command(flower)
    assert flower["readinessProbe"]["httpGet"]["path"] == f"{PREFIX}/healthcheck"
    env = kinds(DOCS, "ConfigMap")[f"{RELEASE}-env"]["data"]
    assert env["FLOWER_URL"] == f"http://{RELEASE}-flower:5555"
    assert "FLOWER_URL" not in kinds(render({"flower": {"enabled": False}}), "ConfigMap")[f"{RELEASE}-env"]["data"]
