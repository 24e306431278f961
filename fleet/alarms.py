"""Which CloudWatch alarms changed state while the fleet ran.

Two sources, because neither is always enough: the state history
(DescribeAlarmHistory, HistoryItemType=StateUpdate) shows a flap that was
already back to OK by the end of the run; comparing DescribeAlarms before and
after catches changes on backends with no history. Only the stack's alarms
(those notifying its `alarmTopicArn`) are considered when the topic is known.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Protocol


class CloudWatchClient(Protocol):
    def get_paginator(self, operation_name: str) -> Any: ...


@dataclass(frozen=True)
class AlarmChange:
    name: str
    before: str | None
    after: str | None
    transitions: tuple[str, ...]  # history summaries in time order, e.g. "Alarm updated from OK to ALARM"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "before": self.before, "after": self.after, "transitions": list(self.transitions)}


def snapshot(cloudwatch: CloudWatchClient, topic_arn: str | None) -> dict[str, str]:
    """Alarm name -> state value, for the stack's metric alarms."""
    states: dict[str, str] = {}
    for page in cloudwatch.get_paginator("describe_alarms").paginate(AlarmTypes=["MetricAlarm"]):
        for alarm in page.get("MetricAlarms", []):
            if topic_arn is None or topic_arn in alarm.get("AlarmActions", []) or topic_arn in alarm.get("OKActions", []):
                states[alarm["AlarmName"]] = alarm["StateValue"]
    return states


def history(cloudwatch: CloudWatchClient, since: dt.datetime, names: set[str]) -> dict[str, list[str]]:
    """State-update summaries since `since`, per alarm, oldest first."""
    out: dict[str, list[tuple[dt.datetime, str]]] = {}
    paginator = cloudwatch.get_paginator("describe_alarm_history")
    for page in paginator.paginate(HistoryItemType="StateUpdate", StartDate=since, EndDate=dt.datetime.now(dt.timezone.utc)):
        for item in page.get("AlarmHistoryItems", []):
            name = item.get("AlarmName", "")
            if name in names:
                out.setdefault(name, []).append((item["Timestamp"], item.get("HistorySummary", "")))
    return {name: [s for _, s in sorted(items, key=lambda x: x[0])] for name, items in out.items()}


def changes(
    before: dict[str, str], after: dict[str, str], transitions: dict[str, list[str]]
) -> list[AlarmChange]:
    """Alarms whose state differs between the snapshots or that have state history in the window."""
    names = sorted(set(before) | set(after))
    return [
        AlarmChange(n, before.get(n), after.get(n), tuple(transitions.get(n, ())))
        for n in names
        if before.get(n) != after.get(n) or transitions.get(n)
    ]
