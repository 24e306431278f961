"""Price what the cost meter counted during a run (``localcloud.meter.delta``) per million readings.

Per-use lines are priced as counted. Fixed monthly costs (stream shards or on-demand stream
hours, alarm metrics, KMS keys, dashboards) are amortised over a month of readings at the rate
the run observed (readings / run seconds x 730 h): they are shown as separate lines, because a
short run at a low rate makes them look large and a busy fleet makes them vanish.
Only the pipeline's DynamoDB calls are priced (the Lambda functions'); the fleet's device
registration and read-back are shown as a note, not billed to the readings.
"""
from __future__ import annotations

from typing import Any

from .breakdown import GB, SECONDS_PER_MONTH, HOURS_PER_MONTH, Breakdown, Line, storage_cost
from .prices import Prices

ROLES = ("authorizer", "ingest", "processor")


def function_role(name: str) -> str:
    """'iot-ingest-dev-processor' -> 'processor' (the program names functions <project>-<stack>-<role>)."""
    tail = name.rsplit("-", 1)[-1]
    return tail if tail in ROLES else name


def table_role(name: str) -> str:
    for role in ("readings", "devices"):
        if role in name:
            return role
    return name


def price_usage(usage: dict[str, Any], readings: int, prices: Prices, *, ttl_days: int | None = None) -> Breakdown:
    seconds = max(float(usage.get("seconds") or 0.0), 1e-9)
    monthly_readings = readings / seconds * SECONDS_PER_MONTH
    dataplane, emulator, fixed = usage["dataplane"], usage["emulator"], usage["fixed"]
    lines: list[Line] = []
    notes: list[str] = []

    http = dataplane.get("http", {})
    lines.append(Line("HTTP API requests", http.get("billedRequests", 0), "requests",
                      http.get("billedRequests", 0) * prices["http_api_per_million_requests"] / 1e6,
                      note="metered per 512 KB"))

    for name, f in sorted(dataplane.get("lambda", {}).items(), key=lambda kv: ROLES.index(function_role(kv[0]))
                          if function_role(kv[0]) in ROLES else 9):
        role = function_role(name)
        n = f.get("invocations", 0)
        if not n:
            continue
        lines.append(Line(f"Lambda {role} requests", n, "invocations",
                          n * prices["lambda_per_million_requests"] / 1e6))
        measured = max(1, f.get("measured", 0))
        note = (f"{f['memoryMb']} MB; modelled {f['modelledMs'] / measured:.1f} ms/inv = CPU "
                f"{f['cpuMs'] / measured:.1f} ms x{max(1.0, 1769 / f['memoryMb']):.2f} + AWS calls "
                f"{f['serviceWaitMs'] / measured:.1f} ms; local wall {f['wallMs'] / n:.1f} ms/inv "
                f"({f['wallGbSeconds']:.3f} GB-s); peak RSS {f['maxRssMb']:.0f} MB")
        lines.append(Line(f"Lambda {role} compute", f.get("modelledGbSeconds", 0.0), "GB-s",
                          f.get("modelledGbSeconds", 0.0) * prices["lambda_per_gb_second_arm64"], note=note))

    streams = fixed.get("streams", {})
    for _caller, by_stream in sorted(emulator.get("kinesis", {}).items()):
        for stream, k in sorted(by_stream.items()):
            mode = streams.get(stream, {}).get("mode", "PROVISIONED")
            if mode == "ON_DEMAND":
                if k.get("onDemandBytes"):
                    lines.append(Line("Kinesis on-demand data in", k["onDemandBytes"] / GB, "GB",
                                      k["onDemandBytes"] / GB * prices["kinesis_on_demand_per_gb_in"],
                                      note=f"{k.get('records', 0):,.0f} records, each rounded up to 1 KB"))
                if k.get("readBytes"):
                    lines.append(Line("Kinesis on-demand data out", k["readBytes"] / GB, "GB",
                                      k["readBytes"] / GB * prices["kinesis_on_demand_per_gb_out"],
                                      note="read by the processor's event source mapping"))
            elif k.get("putUnits"):
                lines.append(Line("Kinesis PUT payload units", k["putUnits"], "units",
                                  k["putUnits"] * prices["kinesis_provisioned_per_million_put_units"] / 1e6,
                                  note=f"{k.get('records', 0):,.0f} records, one unit per 25 KB"))

    dynamodb = emulator.get("dynamodb", {})
    for table, t in sorted(dynamodb.get("pipeline", {}).items()):
        role = table_role(table)
        if t.get("writeUnits"):
            lines.append(Line(f"DynamoDB {role} writes", t["writeUnits"], "WRU",
                              t["writeUnits"] * prices["dynamodb_on_demand_per_million_wru"] / 1e6,
                              note=f"{t.get('writes', 0):,.0f} item writes, {t.get('writtenBytes', 0) / max(1, t.get('writes', 0)):.0f} B/item"))
        if t.get("readUnits"):
            lines.append(Line(f"DynamoDB {role} reads", t["readUnits"], "RRU",
                              t["readUnits"] * prices["dynamodb_on_demand_per_million_rru"] / 1e6,
                              note=f"{t.get('reads', 0):,.0f} reads"))
    other = dynamodb.get("other", {})
    if other:
        wru = sum(t.get("writeUnits", 0) for t in other.values())
        rru = sum(t.get("readUnits", 0) for t in other.values())
        notes.append(f"not priced: {wru:,.0f} WRU and {rru:,.1f} RRU by callers outside the pipeline "
                     "(fleet registration and read-back)")

    logs = dataplane.get("logs", {})
    if logs:
        total = sum(logs.values())
        per_group = ", ".join(f"{function_role(g) if not g.startswith('api-access') else 'API access log'} "
                              f"{n / max(1, readings) * 1e6 / 1e9:.3g} GB" for g, n in sorted(logs.items()))
        lines.append(Line("CloudWatch Logs ingestion", total / GB, "GB",
                          total / GB * prices["cloudwatch_logs_ingestion_per_gb"],
                          note=f"per M readings: {per_group}"))

    sqs = sum(v.get("requests", 0) for v in emulator.get("sqs", {}).values())
    lines.append(Line("SQS requests", sqs, "requests", sqs * prices["sqs_per_million_requests"] / 1e6))

    month_share = seconds / SECONDS_PER_MONTH
    for _stream, s in sorted(streams.items()):
        if s["mode"] == "ON_DEMAND":
            monthly = HOURS_PER_MONTH * prices["kinesis_on_demand_per_stream_hour"]
            lines.append(Line("Kinesis on-demand stream-hours", HOURS_PER_MONTH, "h/month", monthly * month_share,
                              "fixed", f"${monthly:.2f}/month"))
        else:
            monthly = s["shards"] * HOURS_PER_MONTH * prices["kinesis_provisioned_per_shard_hour"]
            lines.append(Line("Kinesis shard-hours", s["shards"] * HOURS_PER_MONTH, "shard-h/month",
                              monthly * month_share, "fixed", f"{s['shards']} shard(s), ${monthly:.2f}/month"))
    for item, count, unit, key in (
        ("CloudWatch alarms", fixed.get("alarmMetrics", 0), "alarm metrics", "cloudwatch_alarm_per_metric_month"),
        ("KMS keys", fixed.get("kmsKeys", 0), "keys", "kms_key_per_month"),
        ("CloudWatch dashboards", fixed.get("dashboards", 0), "dashboards", "cloudwatch_dashboard_per_month"),
    ):
        if count:
            monthly = count * prices[key]
            lines.append(Line(item, count, unit, monthly * month_share, "fixed", f"${monthly:.2f}/month"))

    storage = None
    readings_tables = [t for name, t in dynamodb.get("pipeline", {}).items() if table_role(name) == "readings"]
    if ttl_days is not None and readings_tables and readings:
        stored = sum(t.get("storedBytesDelta", 0) + 100 * t.get("storedItemsDelta", 0) for t in readings_tables)
        pitr = any(v.get("pointInTimeRecovery") for name, v in fixed.get("tables", {}).items()
                   if table_role(name) == "readings")
        storage = storage_cost(stored / readings, ttl_days, pitr, prices["dynamodb_storage_per_gb_month"],
                               prices["dynamodb_pitr_per_gb_month"])
    notes.append(f"prices: {prices.region} list prices as of {prices.as_of} (docs/prices-us-east-1.json); "
                 "Lambda compute at the modelled AWS duration (localcloud/billing_units.py)")
    return Breakdown(readings=readings, lines=lines, period=f"run of {seconds:.0f} s",
                     monthly_readings=monthly_readings, storage=storage, notes=notes)
