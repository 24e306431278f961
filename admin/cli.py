"""``python -m admin``: manage device keys, read readings back, and replay the processor's DLQ
(``replay``, see admin.replay_cli), against AWS or any endpoint.

Errors go to stderr with exit code 2 and say what to do next; keys are printed
exactly once (they cannot be recovered: only their hash is stored).
"""
from __future__ import annotations

import argparse
import csv
import datetime
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError

from handlers.telemetry.usage import QuotaFormatError, parse_quota

from . import replay_cli
from .common import EXIT_USAGE, CliError, aws_client, load_stack_file
from .readings import UnreadableItem, read_readings
from .registry import DeviceRegistry, RegistryError

# What the stack uses when iot-ingest:deviceDailyReadingQuota is not set (settings/defaults.py);
# the CLI cannot read a deployed stack's config, so --default-quota says what the stack sets.
SHIPPED_DEFAULT_QUOTA = "200000"
QUOTA_VALUES = "a whole number >= 0 (0 refuses every reading), 'unlimited', or 'default' (back to the stack's iot-ingest:deviceDailyReadingQuota)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m admin",
                                     description="Manage iot-ingest device keys, read readings back, replay the DLQ.")
    parser.add_argument("--endpoint-url", help="AWS endpoint (e.g. the local cloud's emulator; default: from --stack-file, else AWS)")
    parser.add_argument("--region", help="AWS region (default: from the environment, else us-east-1)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--table", help="devices table name (stack output devicesTableName)")
    source.add_argument("--stack-file", type=Path, help="read devicesTableName and endpointUrl from the local cloud's stack.json")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    add = commands.add_parser("add", help="register a device and print its key once")
    add.add_argument("--device-id", help="id to register (default: generated)")
    add.add_argument("--json", action="store_true", help='print {"deviceId": ..., "key": ...}')

    rotate = commands.add_parser("rotate", help="issue a new key; the old one stops working")
    rotate.add_argument("device_id")
    rotate.add_argument("--json", action="store_true")

    revoke = commands.add_parser("revoke", help="stop a device's key from authorising")
    revoke.add_argument("device_id")

    parser.add_argument("--default-quota", default=SHIPPED_DEFAULT_QUOTA, metavar="N|unlimited",
                        help="the stack's iot-ingest:deviceDailyReadingQuota, for devices without their own "
                             f"(default: {SHIPPED_DEFAULT_QUOTA}, the shipped default)")

    list_ = commands.add_parser("list", help="list devices with today's usage and quota (key hashes are never shown)")
    list_.add_argument("--json", action="store_true")

    quota = commands.add_parser("quota", help="set one device's daily reading quota, or 'default' to follow the stack's")
    quota.add_argument("device_id")
    quota.add_argument("value", metavar="N|unlimited|default")

    usage = commands.add_parser("usage", help="a device's readings today (UTC), its quota, and when the count resets")
    usage.add_argument("device_id")
    usage.add_argument("--json", action="store_true")

    readings = commands.add_parser("readings", help="a device's readings with SINCE <= ts < UNTIL, one per (ts, seq)")
    readings.add_argument("device_id")
    readings.add_argument("--since", required=True, help=f"start, inclusive: {TIME_FORMS}")
    readings.add_argument("--until", required=True, help=f"end, exclusive: {TIME_FORMS}")
    readings.add_argument("--format", choices=("jsonl", "csv"), default="jsonl",
                          help="jsonl: one reading per line; csv: one metric value per row (default jsonl)")
    readings.add_argument("--readings-table", help="readings table name (stack output readingsTableName; "
                          "read from --stack-file when not given)")

    replay_cli.add_parser(commands)
    return parser


_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
TIME_FORMS = "ISO-8601 UTC or with an offset, e.g. 2026-12-01T00:00Z, 2026-12-01T09:30:00+01:00, or a date 2026-12-01 (UTC)"


def parse_time(flag: str, text: str) -> int:
    """ISO-8601 -> epoch ms. A time without an offset is refused (it would silently mean the
    reader's local zone); a bare date means midnight UTC."""
    try:
        if len(text) == 10:
            moment = datetime.datetime.fromisoformat(text).replace(tzinfo=datetime.timezone.utc)
        else:
            moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise CliError(f"{flag} {text!r} is not a time; use {TIME_FORMS}") from None
    if moment.tzinfo is None:
        raise CliError(f"{flag} {text!r} has no time zone; use {TIME_FORMS}")
    epoch_ms = (moment - _EPOCH) // datetime.timedelta(milliseconds=1)  # exact: no float rounding
    if not 0 <= epoch_ms <= 9_999_999_999_999:
        raise CliError(f"{flag} {text!r} is outside the readings' ts range (1970 .. 2286)")
    return epoch_ms


def resolve_target(args: argparse.Namespace) -> tuple[str, str | None]:
    """(table name, endpoint url) from --table/--endpoint-url or --stack-file."""
    if args.stack_file is not None:
        stack = load_stack_file(args.stack_file)
        table = stack.get("devicesTableName")
        if not isinstance(table, str) or not table:
            raise CliError(f"{args.stack_file} has no devicesTableName; re-provision the local cloud")
        endpoint = args.endpoint_url or stack.get("endpointUrl")
        return table, endpoint
    if not args.table:
        raise CliError("say which table: --table NAME (stack output devicesTableName) or --stack-file .localcloud/stack.json")
    return args.table, args.endpoint_url


def _iso_ms(epoch_ms: Any) -> str:
    """lastSeenAt is stored as epoch milliseconds (sortable, comparable); people read ISO-8601."""
    if epoch_ms is None:
        return "never"
    return datetime.datetime.fromtimestamp(int(epoch_ms) / 1000, tz=datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def make_client(endpoint_url: str | None, region: str | None) -> Any:
    """A DynamoDB client (see admin.common.aws_client)."""
    return aws_client("dynamodb", endpoint_url, region)


def readings_table(args: argparse.Namespace) -> str:
    """--readings-table, else the stack file's readingsTableName."""
    if args.readings_table:
        return str(args.readings_table)
    if args.stack_file is not None:
        stack = json.loads(args.stack_file.read_text(encoding="utf-8"))  # resolve_target has read it already
        table = stack.get("readingsTableName") if isinstance(stack, dict) else None
        if isinstance(table, str) and table:
            return table
    raise CliError("say which readings table: --readings-table NAME (stack output readingsTableName) "
                   "or --stack-file .localcloud/stack.json")


def run(argv: list[str], out: TextIO = sys.stdout, err: TextIO = sys.stderr, client: Any = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "replay":
        return replay_cli.run_replay(args, out, err)
    try:
        table, endpoint = resolve_target(args)
        try:
            args.default_quota = parse_quota(args.default_quota)
        except QuotaFormatError:
            raise CliError(f"--default-quota must be a whole number >= 0 or 'unlimited', got {args.default_quota!r}") from None
        if args.command == "quota" and args.value.strip().lower() != "default":
            try:
                args.value = parse_quota(args.value)
            except QuotaFormatError:
                raise CliError(f"quota must be {QUOTA_VALUES}; got {args.value!r}") from None
        ddb = client if client is not None else make_client(endpoint, args.region)
        registry = DeviceRegistry(ddb, table)
        if args.command == "readings":
            return _readings(args, registry, ddb, out)
        return _dispatch(args, registry, out)
    except (CliError, RegistryError, UnreadableItem) as exc:
        print(f"error: {exc}", file=err)
        return EXIT_USAGE
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        hint = " (check --table / --stack-file)" if code == "ResourceNotFoundException" else " (check credentials and --region)"
        print(f"error: DynamoDB refused the request: {code}: {exc.response.get('Error', {}).get('Message', '')}{hint}", file=err)
        return EXIT_USAGE
    except BotoCoreError as exc:
        print(f"error: cannot reach DynamoDB: {exc} (check --endpoint-url, --region and credentials)", file=err)
        return EXIT_USAGE


def _dispatch(args: argparse.Namespace, registry: DeviceRegistry, out: TextIO) -> int:
    if args.command == "add":
        device_id, key = registry.add(args.device_id)
        _print_key(out, device_id, key, args.json, "registered")
    elif args.command == "rotate":
        key = registry.rotate(args.device_id)
        _print_key(out, args.device_id, key, args.json, "rotated")
    elif args.command == "revoke":
        registry.revoke(args.device_id)
        print(f"revoked {args.device_id}", file=out)
    elif args.command == "list":
        devices = registry.list(args.default_quota, _now_ms())
        if args.json:
            print(json.dumps(devices, indent=2, sort_keys=True), file=out)
        else:
            for device in devices:
                print(f"{device['deviceId']}\t{device.get('status', '?')}\tcreated {device.get('createdAt', '-')}"
                      f"\tlast seen {_iso_ms(device.get('lastSeenAt'))}\ttoday {_usage_text(device['quotaToday'])}", file=out)
    elif args.command == "quota":
        if isinstance(args.value, str):  # "default"
            registry.clear_quota(args.device_id)
            print(f"{args.device_id}: daily quota follows the stack default again", file=out)
        else:
            registry.set_quota(args.device_id, args.value)
            shown = "unlimited" if args.value is None else f"{args.value} readings"
            print(f"{args.device_id}: daily quota {shown} per UTC day (its own, whatever the stack default)", file=out)
    elif args.command == "usage":
        summary = registry.usage(args.device_id, args.default_quota, _now_ms())
        if args.json:
            print(json.dumps({"deviceId": args.device_id, **summary}, sort_keys=True), file=out)
        else:
            print(f"{args.device_id}: {_usage_text(summary)}", file=out)
    return 0


def _readings(args: argparse.Namespace, registry: DeviceRegistry, client: Any, out: TextIO) -> int:
    """Check everything first (times, range, table, device), then stream the readings."""
    since = parse_time("--since", args.since)
    until = parse_time("--until", args.until)
    if since >= until:
        raise CliError(f"--since ({args.since}) must be earlier than --until ({args.until}); the range is since <= ts < until")
    table = readings_table(args)
    registry.get(args.device_id)  # unknown or malformed device id: one line naming it, exit 2
    rows = read_readings(client, table, args.device_id, since, until)
    if args.format == "jsonl":
        for reading in rows:
            out.write(json.dumps(reading.as_json(args.device_id), separators=(",", ":")) + "\n")
        return 0
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["deviceId", "ts", "time", "seq", "receivedAt", "metric", "value"])
    for reading in rows:
        for name, value in reading.metrics.items():
            writer.writerow([args.device_id, reading.ts, _iso_ms(reading.ts), reading.seq, reading.received_at,
                             name, repr(value) if isinstance(value, float) else value])
    return 0


def _now_ms() -> int:
    return int(time.time() * 1000)


def _usage_text(summary: dict[str, Any]) -> str:
    if "error" in summary:
        return f"unreadable: {summary['error']}"
    quota = "unlimited" if summary["quota"] is None else str(summary["quota"])
    return (f"{summary['used']} of {quota} readings ({summary['quotaSource']}), "
            f"resets {summary['resetsAt']}")


def _print_key(out: TextIO, device_id: str, key: str, as_json: bool, verb: str) -> None:
    if as_json:
        print(json.dumps({"deviceId": device_id, "key": key}), file=out)
    else:
        print(f"{verb} {device_id}\nkey: {key}\n(store it now: only its hash is kept, it cannot be shown again)", file=out)


def main() -> None:
    sys.exit(run(sys.argv[1:]))
