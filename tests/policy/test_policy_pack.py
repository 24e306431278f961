"""The CrossGuard pack: every policy passes on dev and prod, and each fails on a graph broken in one place."""
from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from policy.check import PROJECT_DIR, Violation, evaluate, mock_graph
from policy.policies import POLICIES

Resources = list[dict[str, Any]]


@pytest.fixture(scope="module")
def graphs() -> dict[str, Resources]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {s: pool.submit(mock_graph, s) for s in ("dev", "prod")}
        return {s: f.result() for s, f in futures.items()}


def _one(resources: Resources, typ: str, name: str) -> dict[str, Any]:
    found = [r for r in resources if r["type"] == typ and r["name"] == name]
    assert len(found) == 1, (typ, name)
    return found[0]


def _inputs(resources: Resources, typ: str, name: str) -> dict[str, Any]:
    inputs: dict[str, Any] = _one(resources, typ, name)["inputs"]
    return inputs


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_policy_passes_on_the_stack(graphs: dict[str, Resources], stack: str) -> None:
    assert evaluate(graphs[stack]) == []


# ---- one break per policy; each returns the (type, name) of the resource it broke ----------------------
def _wildcard_action(g: Resources) -> tuple[str, str]:
    r = _one(g, "aws:iam/rolePolicy:RolePolicy", "iot-ingest-ingest-policy")
    doc = json.loads(r["inputs"]["policy"])
    doc["Statement"][0]["Action"] = ["kinesis:*"]
    r["inputs"]["policy"] = json.dumps(doc)
    return r["type"], r["name"]


def _unencrypted_queue(g: Resources) -> tuple[str, str]:
    _inputs(g, "aws:sqs/queue:Queue", "iot-ingest-processor-dlq")["sqsManagedSseEnabled"] = False
    return "aws:sqs/queue:Queue", "iot-ingest-processor-dlq"


def _infinite_log_retention(g: Resources) -> tuple[str, str]:
    del _inputs(g, "aws:cloudwatch/logGroup:LogGroup", "iot-ingest-ingest-logs")["retentionInDays"]
    return "aws:cloudwatch/logGroup:LogGroup", "iot-ingest-ingest-logs"


def _stage_without_rate(g: Resources) -> tuple[str, str]:
    del _inputs(g, "aws:apigatewayv2/stage:Stage", "iot-ingest-api-stage")["defaultRouteSettings"]["throttlingRateLimit"]
    return "aws:apigatewayv2/stage:Stage", "iot-ingest-api-stage"


def _mapping_retries_forever(g: Resources) -> tuple[str, str]:
    typ, name = "aws:lambda/eventSourceMapping:EventSourceMapping", "iot-ingest-processor-mapping"
    _inputs(g, typ, name)["maximumRetryAttempts"] = -1
    return typ, name


def _alarm_without_ok_action(g: Resources) -> tuple[str, str]:
    typ, name = "aws:cloudwatch/metricAlarm:MetricAlarm", "iot-ingest-monitoring-ingest-errors"
    _inputs(g, typ, name)["okActions"] = []
    return typ, name


def _alarm_on_rest_api_metric(g: Resources) -> tuple[str, str]:
    typ, name = "aws:cloudwatch/metricAlarm:MetricAlarm", "iot-ingest-monitoring-api-4xx"
    _inputs(g, typ, name)["metricName"] = "4XXError"  # the REST API name; HTTP APIs publish 4xx
    return typ, name


def _protected_table_deletable(g: Resources) -> tuple[str, str]:
    typ, name = "aws:dynamodb/table:Table", "iot-ingest-storage-readings"
    assert _one(g, typ, name)["protect"]  # prod asks for protection
    _inputs(g, typ, name)["deletionProtectionEnabled"] = False
    return typ, name


BREAKS: dict[str, Callable[[Resources], tuple[str, str]]] = {
    "iam-no-wildcards": _wildcard_action,
    "encryption-at-rest": _unencrypted_queue,
    "log-retention-finite": _infinite_log_retention,
    "http-api-stage-throttled": _stage_without_rate,
    "kinesis-mapping-failure-handling": _mapping_retries_forever,
    "alarms-notify-one-topic": _alarm_without_ok_action,
    "alarm-metric-published": _alarm_on_rest_api_metric,
    "protected-tables-recoverable": _protected_table_deletable,
}


def test_every_policy_has_a_break() -> None:
    assert set(BREAKS) == {p.name for p in POLICIES}
    assert all(p.description and len(p.description) > 40 for p in POLICIES)


@pytest.mark.parametrize("policy", list(BREAKS))
def test_policy_fails_on_a_graph_broken_in_one_place(graphs: dict[str, Resources], policy: str) -> None:
    broken = copy.deepcopy(graphs["prod"])
    typ, name = BREAKS[policy](broken)
    violations = evaluate(broken)
    assert violations, f"{policy} did not notice"
    assert {(v.policy, v.resource_type, v.resource_name) for v in violations} == {(policy, typ, name)}
    assert all("Remediation:" in v.message for v in violations)


def test_xray_is_the_only_resource_wildcard(graphs: dict[str, Resources]) -> None:
    broken = copy.deepcopy(graphs["dev"])
    r = _one(broken, "aws:iam/rolePolicy:RolePolicy", "iot-ingest-processor-policy")
    doc = json.loads(r["inputs"]["policy"])
    assert any(s["Resource"] == ["*"] for s in doc["Statement"])  # X-Ray's, allowed
    doc["Statement"][0]["Resource"] = ["*"]
    r["inputs"]["policy"] = json.dumps(doc)
    assert [(v.policy, v.resource_name) for v in evaluate(broken)] == [("iam-no-wildcards", r["name"])]


def test_alarms_on_two_topics_are_refused(graphs: dict[str, Resources]) -> None:
    broken = copy.deepcopy(graphs["dev"])
    other = "arn:aws:sns:us-east-1:123456789012:someone-elses-topic"
    inputs = _inputs(broken, "aws:cloudwatch/metricAlarm:MetricAlarm", "iot-ingest-monitoring-api-5xx")
    inputs["alarmActions"] = inputs["okActions"] = [other]
    found = evaluate(broken)
    assert found and {v.policy for v in found} == {"alarms-notify-one-topic"}
    assert any(other in v.message for v in found)


def test_runner_exits_nonzero_naming_policy_and_resource(graphs: dict[str, Resources], tmp_path: Path) -> None:
    broken = copy.deepcopy(graphs["prod"])
    _mapping_retries_forever(broken)
    path = tmp_path / "graph.json"
    path.write_text(json.dumps({"resources": broken}))
    done = subprocess.run([sys.executable, "-m", "policy.check", "--graph", str(path)], cwd=PROJECT_DIR,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "[kinesis-mapping-failure-handling] aws:lambda/eventSourceMapping:EventSourceMapping " \
           "iot-ingest-processor-mapping: " in done.stdout
    assert "1 violation(s)" in done.stderr


def test_runner_passes_a_stack_and_refuses_an_unknown_one() -> None:
    ok = subprocess.run([sys.executable, "-m", "policy.check", "--stack", "dev"], cwd=PROJECT_DIR,
                        capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0 and "8 policies passed on stack dev" in ok.stdout, ok.stderr
    bad = subprocess.run([sys.executable, "-m", "policy.check", "--stack", "staging"], cwd=PROJECT_DIR,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--stack" in bad.stderr and "dev, prod" in bad.stderr


def test_only_the_entry_point_constructs_the_pack() -> None:
    sources = {p.name: p.read_text() for p in (PROJECT_DIR / "policy").glob("*.py")}
    assert [name for name, text in sources.items() if "PolicyPack(" in text] == ["__main__.py"]


def test_violation_text_names_policy_and_resource() -> None:
    assert str(Violation("p", "aws:x/y:Z", "res", "msg")) == "[p] aws:x/y:Z res: msg"
