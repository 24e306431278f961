"""Command-line options of the fleet simulator, parsed into one validated object.

Everything downstream takes a `FleetConfig`, so the modules never see argparse
and tests can build configurations directly. Validation happens here, once, so a
bad option fails before any device is registered or any request is sent.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence


class ConfigError(ValueError):
    """A command-line option is invalid; the message says which and why."""


@dataclass(frozen=True)
class FleetConfig:
    api_url: str
    devices: int = 50
    rate: float | None = None  # requests/s for the whole fleet; None: one request per device per second
    readings_per_request: int = 5
    jitter: float = 0.2
    payload_metrics: int = 4
    duration: float = 30.0
    misbehaving: float = 0.05
    workers: int = 16
    timeout: float = 10.0
    retries: int = 2
    drain_timeout: float = 60.0
    stack_file: Path | None = None
    endpoint_url: str | None = None
    region: str | None = None
    readings_table: str | None = None
    devices_table: str | None = None
    keys_file: Path | None = None
    save_keys: Path | None = None
    report_file: Path | None = None
    progress: bool = True
    seed: int | None = None
    verify: bool = True
    greedy: int = 0  # devices that send far above their daily quota (the demo has one)
    greedy_quota: int = 100  # their per-device daily quota, set at registration
    greedy_factor: float = 10.0  # how many times more often than the others they send
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def effective_rate(self) -> float:
        """Requests per second for the whole fleet (default: each device once a second)."""
        return float(self.devices) if self.rate is None else self.rate

    def validate(self) -> "FleetConfig":
        """Reject impossible settings with a message naming the option."""
        checks: list[tuple[bool, str]] = [
            (self.api_url.startswith(("http://", "https://")), "--api-url must start with http:// or https://"),
            (self.devices >= 1 or self.keys_file is not None, "--devices must be at least 1"),
            (self.rate is None or self.rate > 0, "--rate must be > 0 requests/s"),
            (1 <= self.readings_per_request <= 500, "--readings-per-request must be between 1 and 500"),
            (0.0 <= self.jitter < 1.0, "--jitter must be in [0, 1)"),
            (1 <= self.payload_metrics <= 50, "--payload-metrics must be between 1 and 50 (the schema's maxProperties)"),
            (self.duration > 0, "--duration must be > 0 seconds"),
            (0.0 <= self.misbehaving <= 1.0, "--misbehaving must be a share in [0, 1]"),
            (1 <= self.workers <= 512, "--workers must be between 1 and 512"),
            (self.timeout > 0, "--timeout must be > 0 seconds"),
            (0 <= self.retries <= 10, "--retries must be between 0 and 10"),
            (self.drain_timeout >= 0, "--drain-timeout must be >= 0 seconds"),
            (0 <= self.greedy <= self.devices, "--greedy must be between 0 and --devices"),
            (self.greedy_quota >= 0, "--greedy-quota must be a whole number >= 0 (readings per UTC day)"),
            (1.0 <= self.greedy_factor <= 100.0, "--greedy-factor must be between 1 and 100"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        if self.keys_file is not None and not self.keys_file.is_file():
            raise ConfigError(f"--keys {self.keys_file}: no such file")
        if self.stack_file is not None and not self.stack_file.is_file():
            raise ConfigError(f"--stack-file {self.stack_file}: no such file")
        return self


def add_fleet_options(parser: argparse.ArgumentParser, *, require_api_url: bool) -> None:
    """Options shared by `fleet run` and `fleet demo` (demo gets the API URL from the local cloud)."""
    if require_api_url:
        parser.add_argument("--api-url", required=True, help="invoke URL of the HTTP API (apiUrl output)")
        parser.add_argument("--stack-file", type=Path, help="stack outputs JSON, e.g. .localcloud/stack.json")
        parser.add_argument("--endpoint-url", help="AWS endpoint for DynamoDB/CloudWatch (the emulator); default: real AWS")
        parser.add_argument("--region", help="AWS region (default: AWS_REGION/AWS_DEFAULT_REGION or us-east-1)")
        parser.add_argument("--table", "--devices-table", dest="devices_table", help="devices table name")
        parser.add_argument("--readings-table", help="readings table name (for the read-back check)")
    parser.add_argument("--devices", type=int, default=50, help="devices to register (default 50)")
    parser.add_argument("--rate", type=float, help="requests/s for the whole fleet (default: one per device per second)")
    parser.add_argument("--readings-per-request", type=int, default=5)
    parser.add_argument("--jitter", type=float, default=0.2, help="relative jitter of each device's send interval")
    parser.add_argument("--payload-metrics", type=int, default=4, help="metrics per reading (payload size)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of sending")
    parser.add_argument("--misbehaving", type=float, default=0.05, help="share of devices that send bad input")
    parser.add_argument("--workers", type=int, default=16, help="concurrent HTTP connections")
    parser.add_argument("--timeout", type=float, default=10.0, help="per-request timeout, seconds")
    parser.add_argument("--retries", type=int, default=2, help="retries after 429/503/connection errors")
    parser.add_argument("--drain-timeout", type=float, default=60.0,
                        help="seconds to wait for accepted readings to appear in the readings table")
    parser.add_argument("--keys", dest="keys_file", type=Path,
                        help="existing devices: JSON list of {deviceId,key}; the first --devices of them are used")
    parser.add_argument("--save-keys", type=Path, help="write the registered devices' keys to this file (mode 600)")
    parser.add_argument("--report", dest="report_file", type=Path, help="also write the report as JSON here")
    parser.add_argument("--no-progress", dest="progress", action="store_false")
    parser.add_argument("--no-verify", dest="verify", action="store_false",
                        help="skip the read-back of accepted readings")
    parser.add_argument("--seed", type=int, help="random seed, for repeatable payloads")
    greedy_default = 0 if require_api_url else 1
    parser.add_argument("--greedy", type=int, default=greedy_default,
                        help="devices that send --greedy-factor times as often against a small daily quota, to show the "
                             f"429 quota_exceeded cut-off (default {greedy_default}; needs the devices table)")
    parser.add_argument("--greedy-quota", type=int, default=100, help="the greedy devices' daily reading quota (default 100)")
    parser.add_argument("--greedy-factor", type=float, default=10.0,
                        help="how many times more often a greedy device sends (default 10)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fleet", description="Simulated IoT device fleet.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a fleet against a deployed (or local) API")
    add_fleet_options(run, require_api_url=True)
    demo = sub.add_parser("demo", help="start the local cloud, run a fleet against it, stop everything")
    demo.add_argument("--stack", default="dev", help="stack name (dev|prod)")
    demo.add_argument("--project-dir", type=Path, default=None, help="repository root (default: this checkout)")
    add_fleet_options(demo, require_api_url=False)
    return parser


def config_from_args(args: argparse.Namespace, **overrides: object) -> FleetConfig:
    """Turn parsed arguments (plus values the caller knows better, e.g. demo's URLs) into a config."""
    names = set(FleetConfig.__dataclass_fields__) - {"extra"}
    values = {name: getattr(args, name) for name in names if hasattr(args, name)}
    values.update(overrides)
    return FleetConfig(**values).validate()


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)
