"""The one dated price list (docs/prices-us-east-1.json): loaded and checked once."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

PRICES_FILE = Path(__file__).resolve().parent.parent / "docs" / "prices-us-east-1.json"
REQUIRED = (
    "http_api_per_million_requests", "lambda_per_million_requests", "lambda_per_gb_second_arm64",
    "dynamodb_on_demand_per_million_wru", "dynamodb_on_demand_per_million_rru", "dynamodb_storage_per_gb_month",
    "dynamodb_pitr_per_gb_month", "kinesis_provisioned_per_shard_hour", "kinesis_provisioned_per_million_put_units",
    "kinesis_on_demand_per_stream_hour", "kinesis_on_demand_per_gb_in", "kinesis_on_demand_per_gb_out",
    "cloudwatch_alarm_per_metric_month", "cloudwatch_dashboard_per_month", "kms_key_per_month",
    "sqs_per_million_requests", "cloudwatch_logs_ingestion_per_gb",
)


class PricesError(ValueError):
    """The price file is missing, malformed or lacks a price; the message names the file and key."""


@dataclass(frozen=True)
class Prices:
    as_of: str
    region: str
    values: dict[str, float]
    confidence: dict[str, str]

    def __getitem__(self, key: str) -> float:
        return self.values[key]


def load_prices(path: Path = PRICES_FILE) -> Prices:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PricesError(f"{path}: {exc}") from exc
    entries = data.get("prices_usd") or {}
    missing = [k for k in REQUIRED if not isinstance((entries.get(k) or {}).get("value"), (int, float))]
    if missing:
        raise PricesError(f"{path}: no numeric value for {', '.join(missing)}")
    return Prices(as_of=str(data.get("as_of", "?")), region=str(data.get("region", "?")),
                  values={k: float(v["value"]) for k, v in entries.items() if isinstance(v, dict) and "value" in v},
                  confidence={k: str(v.get("confidence", "?")) for k, v in entries.items() if isinstance(v, dict)})
