"""The three Lambda entry points as the runtime loads them: archive root on sys.path, env config, EMF metrics."""
from __future__ import annotations

import importlib.util
import json
import time
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from handlers_support import DEVICES, NOW_MS, READINGS, STREAM, kinesis_event, reading, register, stream_records, telemetry_event

ARCHIVE_ROOT = Path(__file__).resolve().parents[2] / "handlers"


class Context:
    """The attributes of the Lambda context object that handlers and Powertools read
    (https://docs.aws.amazon.com/lambda/latest/dg/python-context.html)."""

    aws_request_id = "lambda-req-1"
    function_name = "fn"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:fn"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def load(module: str, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> ModuleType:
    """Import a handler module fresh, as the Lambda runtime would (handlers/ is the archive root)."""
    monkeypatch.syspath_prepend(str(ARCHIVE_ROOT))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location(f"{module}_{uuid.uuid4().hex}", ARCHIVE_ROOT / f"{module}.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def emf(out: str) -> dict[str, Any]:
    """Merge the metric values of all EMF lines printed by the handler."""
    values: dict[str, Any] = {}
    for line in out.splitlines():
        if not line.startswith("{"):
            continue
        doc = json.loads(line)
        if "_aws" not in doc:
            continue
        directive = doc["_aws"]["CloudWatchMetrics"][0]
        assert directive["Namespace"] == "IotIngest"
        for metric in directive["Metrics"]:
            value = doc[metric["Name"]]
            values[metric["Name"]] = sum(value) if isinstance(value, list) else value
        values["service"] = doc.get("service")
    return values


BASE_ENV = {"POWERTOOLS_METRICS_NAMESPACE": "IotIngest", "LOG_LEVEL": "INFO"}


def test_ingest_entry_point(kinesis: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    ingest = load("ingest", monkeypatch, {**BASE_ENV, "POWERTOOLS_SERVICE_NAME": "ingest", "STREAM_NAME": STREAM})
    capsys.readouterr()
    now = int(time.time() * 1000)  # the entry point uses the real clock
    response = ingest.handler(telemetry_event({"readings": [reading(now), reading(now, seq=1)]}), Context())
    assert response["statusCode"] == 202
    metrics = emf(capsys.readouterr().out)
    assert metrics["ReadingsAccepted"] == 2 and metrics["service"] == "ingest"
    response = ingest.handler(telemetry_event({"readings": []}), Context())
    assert response["statusCode"] == 400
    metrics = emf(capsys.readouterr().out)
    assert metrics["RequestsRejected"] == 1 and metrics["ReadingsRejected"] == 0
    over = telemetry_event({"readings": [reading(now, seq=2)]})
    over["requestContext"]["authorizer"]["lambda"].update(
        {"quotaExceeded": True, "quota": 5, "used": 5, "resetsAt": "2999-01-01T00:00:00Z"})
    response = ingest.handler(over, Context())
    assert response["statusCode"] == 429 and json.loads(response["body"])["error"] == "quota_exceeded"
    metrics = emf(capsys.readouterr().out)
    assert metrics["QuotaRefusals"] == 1 and "RequestsRejected" not in metrics  # its own metric, on the dashboard
    assert len(stream_records(kinesis)) == 1


def test_ingest_client_leaves_retrying_to_the_budget(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's own retries and long timeouts would let one call outlive the function."""
    from handlers.telemetry.kinesis_put import CALL_MAX_S

    # A service name of its own: Powertools reuses a logger's handler (and its captured stdout) by name.
    ingest = load("ingest", monkeypatch, {**BASE_ENV, "POWERTOOLS_SERVICE_NAME": "ingest-client-config", "STREAM_NAME": STREAM})
    config = ingest.kinesis.meta.config
    assert config.retries["total_max_attempts"] == 1
    assert config.connect_timeout + config.read_timeout == CALL_MAX_S
    assert ingest.CONFIG.put_budget_s + ingest._RESERVE_S <= 10  # the default ingest timeout


def test_processor_retries_share_one_deadline(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    processor = load("processor", monkeypatch, {**BASE_ENV, "POWERTOOLS_SERVICE_NAME": "processor-deadline",
                                                 "READINGS_TABLE": READINGS, "DEVICES_TABLE": DEVICES})

    class Clock:
        now = 100.0

        def monotonic(self) -> float:
            return self.now

    clock = Clock()
    monkeypatch.setattr(processor, "time", clock)

    class ShortContext(Context):
        def get_remaining_time_in_millis(self) -> int:
            return 8_000  # 3 s of budget once the 5 s reserve is kept back

    new_backoff = processor._new_backoff_factory(ShortContext())
    assert new_backoff().policy.budget_s == pytest.approx(3.0)
    clock.now += 2.0
    assert new_backoff().policy.budget_s == pytest.approx(1.0)  # what is left, not a fresh 3 s
    clock.now += 5.0
    assert new_backoff().policy.budget_s == 0.0


def test_processor_client_leaves_every_retry_to_the_deadline(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's standard mode would spend a client-wide retry quota that drains under sustained
    throttling and then stops retrying 5xx answers; the processor retries them itself."""
    processor = load("processor", monkeypatch, {**BASE_ENV, "POWERTOOLS_SERVICE_NAME": "processor-client-config",
                                                 "READINGS_TABLE": READINGS, "DEVICES_TABLE": DEVICES})
    config = processor.dynamodb.meta.config
    assert config.retries["total_max_attempts"] == 1
    # the deadline keeps back one whole call plus a second to answer
    assert processor._RESERVE_S == config.connect_timeout + config.read_timeout + 1


def test_authorizer_entry_point(dynamodb: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    register(dynamodb, "dev-1", "secret-key")
    authorizer = load("authorizer", monkeypatch, {**BASE_ENV, "POWERTOOLS_SERVICE_NAME": "authorizer", "DEVICES_TABLE": DEVICES,
                                                      "DEVICE_DAILY_READING_QUOTA": "1000"})
    capsys.readouterr()
    allowed = authorizer.handler({"headers": {"x-device-id": "dev-1", "x-device-key": "secret-key"}}, Context())
    assert allowed == {"isAuthorized": True, "context": {"deviceId": "dev-1"}}
    assert emf(capsys.readouterr().out)["AuthDenied"] == 0
    denied = authorizer.handler({"headers": {"x-device-id": "dev-1", "x-device-key": "nope"}}, Context())
    assert denied["isAuthorized"] is False
    out = capsys.readouterr().out
    assert emf(out)["AuthDenied"] == 1
    assert "wrong key" in out and "nope" not in out
    today = time.strftime("%Y-%m-%d", time.gmtime())
    dynamodb.update_item(TableName=DEVICES, Key={"deviceId": {"S": "dev-1"}}, UpdateExpression="SET usageDay = :d, usageCount = :n",
                         ExpressionAttributeValues={":d": {"S": today}, ":n": {"N": "1000"}})
    over = authorizer.handler({"headers": {"x-device-id": "dev-1", "x-device-key": "secret-key"}}, Context())
    assert over["isAuthorized"] is True  # the stack default from DEVICE_DAILY_READING_QUOTA is reached
    assert over["context"]["quotaExceeded"] is True and over["context"]["quota"] == 1000


def test_processor_entry_point(dynamodb: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from handlers.telemetry.records import pack
    from handlers.telemetry.validation import Reading

    processor = load("processor", monkeypatch, {**BASE_ENV, "POWERTOOLS_SERVICE_NAME": "processor", "READINGS_TABLE": READINGS, "DEVICES_TABLE": DEVICES})
    capsys.readouterr()
    (good,) = pack("dev-1", "r", NOW_MS, [Reading(NOW_MS, 0, {"t": 1})])
    response = processor.handler(kinesis_event([("1", good, "dev-1"), ("2", b"garbage", "dev-1")]), Context())
    assert response == {"batchItemFailures": [{"itemIdentifier": "2"}]}
    out = capsys.readouterr().out
    metrics = emf(out)
    assert metrics["ReadingsStored"] == 1 and metrics["RecordsFailed"] == 1
    assert "poison record" in out and '"sequenceNumber":"2"' in out.replace(" ", "")


def test_missing_configuration_fails_at_init_naming_the_variable(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STREAM_NAME", raising=False)
    with pytest.raises(ValueError, match="STREAM_NAME"):
        load("ingest", monkeypatch, dict(BASE_ENV))
    with pytest.raises(ValueError, match="MAX_BODY_BYTES"):
        load("ingest", monkeypatch, {**BASE_ENV, "STREAM_NAME": STREAM, "MAX_BODY_BYTES": "lots"})


def test_shells_import_only_top_level_telemetry_not_handlers_package() -> None:
    # Inside the Lambda archive there is no "handlers" package: the shells must not depend on one.
    for name in ("authorizer", "ingest", "processor"):
        source = (ARCHIVE_ROOT / f"{name}.py").read_text()
        assert "from handlers" not in source and "import handlers" not in source
    for path in (ARCHIVE_ROOT / "telemetry").glob("*.py"):
        text = path.read_text()
        assert "from telemetry" not in text and "from handlers" not in text, path.name


def test_rejection_with_a_lone_surrogate_is_logged_escaped(
    kinesis: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A metric name "\\ud800" gets its 400, and its log line survives the UTF-8 stream (it used to be
    dropped with a logging error, as UTF-8 cannot encode a lone surrogate)."""
    ingest = load("ingest", monkeypatch, {**BASE_ENV, "POWERTOOLS_SERVICE_NAME": "ingest-surrogate", "STREAM_NAME": STREAM})
    capsys.readouterr()
    now = int(time.time() * 1000)
    event = telemetry_event('{"readings": [{"ts": %d, "metrics": {"\\ud800x": 1}}]}' % now, raw=True)
    response = ingest.handler(event, Context())
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["field"] == "readings[0].metrics.\ud800x"
    captured = capsys.readouterr()
    assert "Logging error" not in captured.err
    lines = [json.loads(line) for line in captured.out.splitlines() if '"request rejected"' in line]
    assert len(lines) == 1
    assert lines[0]["field"] == "readings[0].metrics.\\ud800x"  # escaped text, not the surrogate
    assert lines[0]["status"] == 400 and lines[0]["deviceId"] == "dev-1"
    assert stream_records(kinesis) == []


def test_denial_of_a_surrogate_device_id_is_logged_escaped(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    authorizer = load("authorizer", monkeypatch, {**BASE_ENV, "POWERTOOLS_SERVICE_NAME": "authorizer-surrogate",
                                                   "DEVICES_TABLE": DEVICES, "DEVICE_DAILY_READING_QUOTA": "1000"})
    capsys.readouterr()
    denied = authorizer.handler({"headers": {"x-device-id": "dev-\udc80", "x-device-key": "k"}}, Context())
    assert denied["isAuthorized"] is False
    captured = capsys.readouterr()
    assert "Logging error" not in captured.err
    lines = [json.loads(line) for line in captured.out.splitlines() if '"device denied"' in line]
    assert [line["deviceId"] for line in lines] == ["dev-\\udc80"]
