"""The monitor evaluates fixed periods aligned to the period boundary, as CloudWatch does.

No emulator needed: ``Monitor.decide`` reads only the samples held in memory.
"""
from __future__ import annotations

from typing import Any

from localcloud import alarms
from localcloud.monitor import Monitor

MINUTE = 60.0
T0 = 1_700_000_040.0  # 40 s into a minute: a fault rarely starts on a period boundary


def _alarm(**over: Any) -> dict[str, Any]:
    """An alarm as describe_alarms returns it: api-4xx's tuning (Sum >= 100 in 3 of 5 minutes)."""
    alarm = {"AlarmName": "api-4xx", "Namespace": "AWS/ApiGateway", "MetricName": "4xx",
             "Dimensions": [{"Name": "ApiId", "Value": "a1"}, {"Name": "Stage", "Value": "$default"}],
             "Statistic": "Sum", "Period": 60, "EvaluationPeriods": 5, "DatapointsToAlarm": 3,
             "Threshold": 100.0, "ComparisonOperator": "GreaterThanOrEqualToThreshold",
             "TreatMissingData": "notBreaching", "StateValue": alarms.OK}
    alarm.update(over)
    return alarm


def _states_over_time(monitor: Monitor, alarm: dict[str, Any], start: float, end: float,
                      every: float) -> list[tuple[float, str]]:
    """Evaluate every ``every`` seconds as the monitor's loop does; the state transitions seen."""
    transitions: list[tuple[float, str]] = []
    t = start
    while t <= end:
        decision = monitor.decide(alarm, t)
        if decision is not None and decision.state != alarm["StateValue"]:
            alarm["StateValue"] = decision.state
            transitions.append((t - start, decision.state))
        t += every
    return transitions


def _fault(monitor: Monitor, per_second: int, seconds: int, start: float = T0) -> None:
    dims = {"ApiId": "a1", "Stage": "$default"}
    for s in range(seconds):
        for k in range(per_second):
            monitor.put("AWS/ApiGateway", "4xx", dims, 1.0, "Count", timestamp=start + s + k / per_second)


def test_a_stopped_fault_alarms_once_and_clears_once() -> None:
    """2 errors/s for 200 s, then nothing. A window that slides with the clock re-cuts those samples
    and went ALARM -> OK -> ALARM after the fault had stopped; fixed minutes give one ALARM, one OK."""
    monitor = Monitor("http://127.0.0.1:9", "us-east-1")
    _fault(monitor, per_second=2, seconds=200)
    transitions = _states_over_time(monitor, _alarm(), T0, T0 + 900, every=5)
    assert [state for _, state in transitions] == [alarms.ALARM, alarms.OK], transitions


def test_only_complete_periods_count() -> None:
    """Samples of the minute still running are not evaluated until the minute ends."""
    monitor = Monitor("http://127.0.0.1:9", "us-east-1")
    boundary = 1_700_000_100.0  # a multiple of 60
    for _ in range(5):
        monitor.put("AWS/Lambda", "Errors", {"FunctionName": "f"}, 1.0, "Count", timestamp=boundary + 10)
    alarm = _alarm(Namespace="AWS/Lambda", MetricName="Errors", Dimensions=[{"Name": "FunctionName", "Value": "f"}],
                   EvaluationPeriods=1, DatapointsToAlarm=1, Threshold=1.0)
    assert [v for v, _ in monitor.periods(alarm, boundary + 59)] == [None]
    assert [v for v, _ in monitor.periods(alarm, boundary + 60)] == [5.0]
    assert [v for v, _ in monitor.periods(alarm, boundary + 119.9)] == [5.0]  # fixed, not sliding
    assert [v for v, _ in monitor.periods(alarm, boundary + 120)] == [None]


def test_scaled_periods_are_aligned_too() -> None:
    """At time_scale 0.02 a minute lasts 1.2 s, aligned to multiples of 1.2 s since the epoch."""
    monitor = Monitor("http://127.0.0.1:9", "us-east-1", time_scale=0.02)
    boundary = 1_700_000_000.4  # 1_416_666_667 x 1.2 (within float precision)
    monitor.put("AWS/Lambda", "Errors", {"FunctionName": "f"}, 1.0, "Count", timestamp=boundary + 0.1)
    monitor.put("AWS/Lambda", "Errors", {"FunctionName": "f"}, 1.0, "Count", timestamp=boundary + 1.1)
    alarm = _alarm(Namespace="AWS/Lambda", MetricName="Errors", Dimensions=[{"Name": "FunctionName", "Value": "f"}],
                   EvaluationPeriods=2, DatapointsToAlarm=1, Threshold=1.0)
    assert [v for v, _ in monitor.periods(alarm, boundary + 1.25)] == [None, 2.0]
    assert [v for v, _ in monitor.periods(alarm, boundary + 2.45)] == [2.0, None]


def test_a_time_scaled_cloud_judges_counts_as_rates_and_shrinks_duration_thresholds() -> None:
    """Drills: at time_scale 0.02 a 1.2 s period holding 2 4xx is 100 a real minute (api-4xx
    fires); a Duration threshold of 8,000 ms at time_threshold_scale 0.05 is 400 ms."""
    plain = Monitor("http://127.0.0.1:9", "us-east-1", time_scale=0.02)
    scaled = Monitor("http://127.0.0.1:9", "us-east-1", time_scale=0.02, count_rates=True,
                     time_threshold_scale=0.05)
    boundary = 1_700_000_000.4
    for monitor in (plain, scaled):
        for offset in (0.1, 0.2):
            monitor.put("AWS/ApiGateway", "4xx", {"ApiId": "a1", "Stage": "$default"}, 1.0, "Count",
                        timestamp=boundary + offset)
        monitor.put("AWS/Lambda", "Duration", {"FunctionName": "f"}, 450.0, "Milliseconds", timestamp=boundary + 0.1)
    four = _alarm(EvaluationPeriods=1, DatapointsToAlarm=1)
    duration = _alarm(Namespace="AWS/Lambda", MetricName="Duration", Statistic="Maximum", Threshold=8000.0,
                      Dimensions=[{"Name": "FunctionName", "Value": "f"}], EvaluationPeriods=1, DatapointsToAlarm=1,
                      ComparisonOperator="GreaterThanThreshold")
    after = boundary + 1.25
    assert [plain.decide(a, after).state for a in (four, duration)] == [alarms.OK, alarms.OK]
    assert [scaled.decide(a, after).state for a in (four, duration)] == [alarms.ALARM, alarms.ALARM]


def _stalled_alarm() -> dict[str, Any]:
    """processor-stalled as describe_alarms returns it (metric math)."""
    def query(qid: str, namespace: str, name: str, dims: dict[str, str]) -> dict[str, Any]:
        return {"Id": qid, "ReturnData": False, "MetricStat": {
            "Metric": {"Namespace": namespace, "MetricName": name,
                       "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()]},
            "Period": 60, "Stat": "Sum"}}
    return {"AlarmName": "processor-stalled", "EvaluationPeriods": 3, "DatapointsToAlarm": 2, "Threshold": 1.0,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold", "TreatMissingData": "notBreaching",
            "StateValue": alarms.OK, "Metrics": [
                query("incoming", "AWS/Kinesis", "IncomingRecords", {"StreamName": "s"}),
                query("invocations", "AWS/Lambda", "Invocations", {"FunctionName": "p"}),
                {"Id": "stalled", "ReturnData": True,
                 "Expression": "IF(FILL(invocations, 0) == 0, FILL(incoming, 0), 0)"}]}


def test_stalled_consumer_math_alarm_fires_only_when_records_arrive_and_nothing_runs() -> None:
    monitor = Monitor("http://127.0.0.1:9", "us-east-1")
    start = 1_700_000_040.0  # a minute boundary
    for minute in range(3):  # healthy: records in, processor invoked
        monitor.put("AWS/Kinesis", "IncomingRecords", {"StreamName": "s"}, 5.0, "Count", timestamp=start + minute * 60)
        monitor.put("AWS/Lambda", "Invocations", {"FunctionName": "p"}, 1.0, "Count", timestamp=start + minute * 60 + 1)
    assert monitor.decide(_stalled_alarm(), start + 180).state == alarms.OK
    idle = start + 600  # three minutes with nothing at all: an idle stream, not a stalled consumer
    assert monitor.decide(_stalled_alarm(), idle).state == alarms.OK
    for minute in range(2):  # the mapping is disabled: records keep coming, no invocation
        monitor.put("AWS/Kinesis", "IncomingRecords", {"StreamName": "s"}, 5.0, "Count", timestamp=idle + minute * 60)
    assert [v for v, _ in monitor.periods(_stalled_alarm(), idle + 120)] == [0.0, 5.0, 5.0]
    assert monitor.decide(_stalled_alarm(), idle + 120).state == alarms.ALARM
