"""Alarm evaluation: the pure math (alarms.py) and the monitor against a moto server."""
from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timezone
from typing import Any

import boto3
import pytest

from localcloud import alarms
from localcloud.monitor import Monitor


def decide(values, treat="missing", m=None, op="GreaterThanThreshold", current="OK", threshold=0.0):
    return alarms.decide(values, threshold=threshold, operator=op, datapoints_to_alarm=m or len(values),
                         treat_missing=treat, current_state=current).state


def test_statistics_including_percentiles() -> None:
    samples = [float(x) for x in range(1, 101)]
    assert alarms.statistic("Sum", samples) == 5050
    assert alarms.statistic("Average", samples) == 50.5
    assert alarms.statistic("Maximum", samples) == 100 and alarms.statistic("Minimum", samples) == 1
    assert alarms.statistic("SampleCount", samples) == 100
    assert alarms.statistic("p99", samples) == 99 and alarms.statistic("p50", samples) == 50
    assert alarms.statistic("p100", samples) == 100
    assert alarms.statistic("Sum", []) is None
    with pytest.raises(alarms.UnsupportedAlarm):
        alarms.statistic("tm99", samples)


def test_m_of_n() -> None:
    assert decide([1, 0, 1], m=2) == "ALARM"
    assert decide([1, 0, 0], m=2) == "OK"
    assert decide([1, 1, 1]) == "ALARM"
    assert decide([1, 1, 0]) == "OK"  # M defaults to N


@pytest.mark.parametrize("treat,current,expected", [
    ("missing", "OK", "INSUFFICIENT_DATA"),
    ("notBreaching", "ALARM", "OK"),
    ("breaching", "OK", "ALARM"),
    ("ignore", "ALARM", "ALARM"),
    ("ignore", "OK", "OK"),
])
def test_treat_missing_data_all_missing(treat: str, current: str, expected: str) -> None:
    assert decide([None, None, None], treat=treat, current=current) == expected


def test_treat_missing_data_partial() -> None:
    assert decide([None, 1, None], treat="breaching", m=3) == "ALARM"
    assert decide([None, 1, None], treat="notBreaching", m=2) == "OK"
    assert decide([None, 1, None], treat="missing", m=1) == "ALARM"
    assert decide([None, 0, None], treat="ignore", m=1, current="ALARM") == "OK"


def test_operators_and_reason() -> None:
    assert decide([5], op="GreaterThanOrEqualToThreshold", threshold=5) == "ALARM"
    assert decide([5], op="LessThanThreshold", threshold=5) == "OK"
    assert decide([4], op="LessThanOrEqualToThreshold", threshold=5) == "ALARM"
    d = alarms.decide([2.0], threshold=0, operator="GreaterThanThreshold", datapoints_to_alarm=1,
                      treat_missing="missing", current_state="OK")
    assert d.reason.startswith("Threshold Crossed: 1 out of the last 1 datapoints [2]")
    with pytest.raises(alarms.UnsupportedAlarm):
        decide([1], op="LessThanLowerOrGreaterThanUpperThreshold")


@pytest.fixture
def endpoint(emulator: Any) -> str:
    """The shared emulator; every test uses its own alarm names and filters to them."""
    return emulator.endpoint_url


def mine(changes: list[dict[str, Any]], suffix: str) -> dict[str, str]:
    return {c["AlarmName"]: c["NewStateValue"] for c in changes if c["AlarmName"].endswith(suffix)}


def client(service: str, endpoint: str):
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def test_monitor_drives_alarm_and_notifies_topic(endpoint: str) -> None:
    cw, sns, sqs = client("cloudwatch", endpoint), client("sns", endpoint), client("sqs", endpoint)
    topic = sns.create_topic(Name="alarms-t1")["TopicArn"]
    queue = sqs.create_queue(QueueName="alarm-inbox-t1")["QueueUrl"]
    qarn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=qarn, Attributes={"RawMessageDelivery": "true"})
    dims = [{"Name": "FunctionName", "Value": "proc-t1"}]
    cw.put_metric_alarm(AlarmName="proc-errors-t1", Namespace="AWS/Lambda", MetricName="Errors", Dimensions=dims,
                        Statistic="Sum", Period=60, EvaluationPeriods=2, DatapointsToAlarm=1, Threshold=0,
                        ComparisonOperator="GreaterThanThreshold", TreatMissingData="notBreaching",
                        AlarmActions=[topic], OKActions=[topic])
    monitor = Monitor(endpoint, "us-east-1")
    assert mine(monitor.evaluate_alarms(), "-t1") == {}  # no data, notBreaching: stays OK
    minute_over = time.time() + 60  # only complete periods are evaluated (see test_monitor_periods.py)
    monitor.put("AWS/Lambda", "Errors", {"FunctionName": "proc-t1"}, 0.0, "Count")
    assert mine(monitor.evaluate_alarms(now=minute_over), "-t1") == {}  # a zero is not > 0
    monitor.put("AWS/Lambda", "Errors", {"FunctionName": "proc-t1"}, 1.0, "Count")
    assert mine(monitor.evaluate_alarms(), "-t1") == {}  # its minute is not over yet
    changes = [c for c in monitor.evaluate_alarms(now=time.time() + 60) if c["AlarmName"] == "proc-errors-t1"]
    assert [c["NewStateValue"] for c in changes] == ["ALARM"]
    state = cw.describe_alarms(AlarmNames=["proc-errors-t1"])["MetricAlarms"][0]["StateValue"]
    assert state == "ALARM"
    msg = json.loads(sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)["Messages"][0]["Body"])
    assert msg["AlarmName"] == "proc-errors-t1" and msg["OldStateValue"] == "OK"
    assert msg["Trigger"]["Dimensions"] == [{"value": "proc-t1", "name": "FunctionName"}]
    assert msg["Trigger"]["Statistic"] == "SUM" and msg["Trigger"]["Period"] == 60
    # Two full periods later the error has aged out of the range: back to OK, with an OK notification.
    later = monitor.evaluate_alarms(now=time.time() + 181)
    assert mine(later, "-t1") == {"proc-errors-t1": "OK"}


def test_percentile_alarm_uses_raw_samples(endpoint: str) -> None:
    cw = client("cloudwatch", endpoint)
    dims = [{"Name": "ApiId", "Value": "api-t2"}, {"Name": "Stage", "Value": "$default"}]
    cw.put_metric_alarm(AlarmName="latency-p99-t2", Namespace="AWS/ApiGateway", MetricName="Latency",
                        Dimensions=dims, ExtendedStatistic="p99", Period=60, EvaluationPeriods=1,
                        Threshold=500, ComparisonOperator="GreaterThanThreshold", TreatMissingData="notBreaching")
    monitor = Monitor(endpoint, "us-east-1")
    for _ in range(198):
        monitor.put("AWS/ApiGateway", "Latency", {"ApiId": "api-t2", "Stage": "$default"}, 10.0, "Milliseconds")
    monitor.put("AWS/ApiGateway", "Latency", {"ApiId": "api-t2", "Stage": "$default"}, 900.0, "Milliseconds")
    minute = time.time()
    # nearest-rank p99 of 199 samples is still 10
    assert mine(monitor.evaluate_alarms(now=minute + 60), "-t2") == {}
    for _ in range(3):
        monitor.put("AWS/ApiGateway", "Latency", {"ApiId": "api-t2", "Stage": "$default"}, 900.0, "Milliseconds",
                    timestamp=minute)
    assert mine(monitor.evaluate_alarms(now=minute + 60), "-t2") == {"latency-p99-t2": "ALARM"}


def test_low_sample_minimum_follows_cloudwatch() -> None:
    assert [alarms.low_sample_minimum(p) for p in ("p99", "p90", "p50", "p99.9", "p10", "p25")] == \
        [1000, 100, 20, 10000, 100, 40]
    assert [alarms.low_sample_minimum(s) for s in ("p100", "p0", "Maximum", "pxx")] == [None, None, None, None]


def test_percentile_alarm_ignoring_low_samples_keeps_its_state(endpoint: str) -> None:
    """EvaluateLowSampleCountPercentile=ignore: a p90 period with fewer than 100 samples does not
    change the state; from 100 samples on it is evaluated. The same alarm set to evaluate acts at once."""
    cw = client("cloudwatch", endpoint)
    dims = [{"Name": "ApiId", "Value": "api-t6"}, {"Name": "Stage", "Value": "$default"}]
    for name, mode in (("p90-ignore-t6", "ignore"), ("p90-evaluate-t6", "evaluate")):
        cw.put_metric_alarm(AlarmName=name, Namespace="AWS/ApiGateway", MetricName="Latency", Dimensions=dims,
                            ExtendedStatistic="p90", Period=60, EvaluationPeriods=1, Threshold=500,
                            ComparisonOperator="GreaterThanThreshold", TreatMissingData="notBreaching",
                            EvaluateLowSampleCountPercentile=mode)
    assert cw.describe_alarms(AlarmNames=["p90-ignore-t6"])["MetricAlarms"][0][
        "EvaluateLowSampleCountPercentile"] == "ignore"  # what the monitor reads back
    def state() -> str:
        return cw.describe_alarms(AlarmNames=["p90-ignore-t6"])["MetricAlarms"][0]["StateValue"]

    initial = state()  # the emulator starts alarms in OK, AWS in INSUFFICIENT_DATA
    monitor = Monitor(endpoint, "us-east-1")
    latency = {"ApiId": "api-t6", "Stage": "$default"}
    minute = time.time()
    for _ in range(99):
        monitor.put("AWS/ApiGateway", "Latency", latency, 900.0, "Milliseconds", timestamp=minute)
    first = mine(monitor.evaluate_alarms(now=minute + 60), "-t6")
    assert first == {"p90-evaluate-t6": "ALARM"}  # 99 slow samples: only the evaluating alarm acts
    assert state() == initial != "ALARM"
    monitor.put("AWS/ApiGateway", "Latency", latency, 900.0, "Milliseconds", timestamp=minute)  # the 100th
    assert mine(monitor.evaluate_alarms(now=minute + 60), "-t6") == {"p90-ignore-t6": "ALARM"}


def test_low_sample_count_is_judged_at_the_real_period_rate_under_a_time_scale(endpoint: str) -> None:
    """At time_scale 0.1 a 60 s period lasts 6 s and sees a tenth of the requests: 9 samples stand
    for 90 in a real minute (too few for p90), 10 for 100 (enough)."""
    cw = client("cloudwatch", endpoint)
    cw.put_metric_alarm(AlarmName="p90-scaled-t7", Namespace="AWS/ApiGateway", MetricName="Latency",
                        Dimensions=[{"Name": "ApiId", "Value": "api-t7"}, {"Name": "Stage", "Value": "$default"}],
                        ExtendedStatistic="p90", Period=60, EvaluationPeriods=1, Threshold=500,
                        ComparisonOperator="GreaterThanThreshold", EvaluateLowSampleCountPercentile="ignore")
    monitor = Monitor(endpoint, "us-east-1", time_scale=0.1)
    latency = {"ApiId": "api-t7", "Stage": "$default"}
    now = time.time() + 6  # the 6 s period holding now - 6 is complete
    for _ in range(9):
        monitor.put("AWS/ApiGateway", "Latency", latency, 900.0, "Milliseconds", timestamp=now - 6)
    assert mine(monitor.evaluate_alarms(now=now), "-t7") == {}
    monitor.put("AWS/ApiGateway", "Latency", latency, 900.0, "Milliseconds", timestamp=now - 6)
    assert mine(monitor.evaluate_alarms(now=now), "-t7") == {"p90-scaled-t7": "ALARM"}


def test_exact_dimensions_backdated_samples_and_statistic_set_flush(endpoint: str) -> None:
    cw = client("cloudwatch", endpoint)
    both = [{"Name": "TableName", "Value": "t3"}, {"Name": "Operation", "Value": "BatchWriteItem"}]
    for name, dims in (("ddb-op-t3", both), ("ddb-table-only-t3", both[:1])):
        cw.put_metric_alarm(AlarmName=name, Namespace="AWS/DynamoDB", MetricName="SystemErrors", Dimensions=dims,
                            Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=0,
                            ComparisonOperator="GreaterThanThreshold")
    monitor = Monitor(endpoint, "us-east-1")
    first = mine(monitor.evaluate_alarms(), "-t3")
    assert first == {"ddb-op-t3": "INSUFFICIENT_DATA", "ddb-table-only-t3": "INSUFFICIENT_DATA"}
    monitor.put("AWS/DynamoDB", "SystemErrors", {"TableName": "t3", "Operation": "BatchWriteItem"}, 2.0, "Count",
                timestamp=time.time() - 60)
    # CloudWatch matches the exact dimension set: the TableName-only alarm sees nothing.
    assert mine(monitor.evaluate_alarms(), "-t3") == {"ddb-op-t3": "ALARM"}
    for v in (1.0, 3.0, 5.0):
        monitor.put("Test/T3", "Latency", {"X": "1"}, v, "Milliseconds", timestamp=1_700_000_000.5)
    assert monitor.flush() == 1  # three samples, one statistic set
    point = cw.get_metric_statistics(Namespace="Test/T3", MetricName="Latency", Dimensions=[{"Name": "X", "Value": "1"}],
                                     StartTime=datetime.fromtimestamp(1_699_999_990, tz=timezone.utc),
                                     EndTime=datetime.fromtimestamp(1_700_000_010, tz=timezone.utc),
                                     Period=60, Statistics=["SampleCount", "Sum", "Maximum"])["Datapoints"][0]
    assert (point["SampleCount"], point["Sum"], point["Maximum"]) == (3, 9, 5)


def test_time_scale_shrinks_periods(endpoint: str) -> None:
    cw = client("cloudwatch", endpoint)
    dims = [{"Name": "FunctionName", "Value": "proc-t4"}]
    cw.put_metric_alarm(AlarmName="errors-t4", Namespace="AWS/Lambda", MetricName="Errors", Dimensions=dims,
                        Statistic="Sum", Period=60, EvaluationPeriods=3, DatapointsToAlarm=2, Threshold=1,
                        ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData="notBreaching")
    monitor = Monitor(endpoint, "us-east-1", time_scale=0.01)  # 60 s periods last 0.6 s
    now = (int(time.time() / 0.6) + 1) * 0.6 + 0.01  # just after a scaled period boundary
    monitor.put("AWS/Lambda", "Errors", {"FunctionName": "proc-t4"}, 1.0, "Count", timestamp=now - 1.0)
    assert mine(monitor.evaluate_alarms(now=now), "-t4") == {}  # one breaching period of three
    monitor.put("AWS/Lambda", "Errors", {"FunctionName": "proc-t4"}, 1.0, "Count", timestamp=now - 0.1)
    assert mine(monitor.evaluate_alarms(now=now), "-t4") == {"errors-t4": "ALARM"}  # 2 of 3 scaled periods
    assert mine(monitor.evaluate_alarms(now=now + 2.0), "-t4") == {"errors-t4": "OK"}  # both aged out
    with pytest.raises(ValueError):
        Monitor(endpoint, "us-east-1", time_scale=0)


def test_alarm_it_cannot_evaluate_is_reported_once_as_a_warning(endpoint: str, caplog: pytest.LogCaptureFixture) -> None:
    cw = client("cloudwatch", endpoint)
    cw.put_metric_alarm(AlarmName="ratio-t9", ComparisonOperator="GreaterThanThreshold", EvaluationPeriods=1,
                        Threshold=0.05, Metrics=[
                            {"Id": "e", "Expression": "RATE(errors) / requests", "ReturnData": True},
                            {"Id": "errors", "MetricStat": {"Metric": {"Namespace": "AWS/ApiGateway", "MetricName": "5xx"},
                                                             "Period": 60, "Stat": "Sum"}, "ReturnData": False},
                            {"Id": "requests", "MetricStat": {"Metric": {"Namespace": "AWS/ApiGateway", "MetricName": "Count"},
                                                               "Period": 60, "Stat": "Sum"}, "ReturnData": False},
                        ])
    monitor = Monitor(endpoint, "us-east-1")
    with caplog.at_level(logging.WARNING, logger="localcloud.monitor"):
        monitor.evaluate_alarms()
        monitor.evaluate_alarms()
    warned = [r for r in caplog.records if "ratio-t9" in r.getMessage()]
    assert len(warned) == 1 and warned[0].levelno == logging.WARNING
    assert "NOT evaluated" in warned[0].getMessage() and "RATE" in warned[0].getMessage()
