"""``python -m admin``: manage device keys against AWS or any DynamoDB endpoint,
and replay the processor's DLQ (``replay``, see admin.replay_cli).

Errors go to stderr with exit code 2 and say what to do next; keys are printed
exactly once (they cannot be recovered: only their hash is stored).
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError

from . import replay_cli
from .common import EXIT_USAGE, CliError, aws_client, load_stack_file
from .registry import DeviceRegistry, RegistryError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m admin", description="Manage iot-ingest device keys; replay the DLQ.")
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

    list_ = commands.add_parser("list", help="list devices (key hashes are never shown)")
    list_.add_argument("--json", action="store_true")

    replay_cli.add_parser(commands)
    return parser


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


def run(argv: list[str], out: TextIO = sys.stdout, err: TextIO = sys.stderr, client: Any = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "replay":
        return replay_cli.run_replay(args, out, err)
    try:
        table, endpoint = resolve_target(args)
        registry = DeviceRegistry(client if client is not None else make_client(endpoint, args.region), table)
        return _dispatch(args, registry, out)
    except (CliError, RegistryError) as exc:
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
        devices = registry.list()
        if args.json:
            print(json.dumps(devices, indent=2, sort_keys=True), file=out)
        else:
            for device in devices:
                print(f"{device['deviceId']}\t{device.get('status', '?')}\tcreated {device.get('createdAt', '-')}"
                      f"\tlast seen {_iso_ms(device.get('lastSeenAt'))}", file=out)
    return 0


def _print_key(out: TextIO, device_id: str, key: str, as_json: bool, verb: str) -> None:
    if as_json:
        print(json.dumps({"deviceId": device_id, "key": key}), file=out)
    else:
        print(f"{verb} {device_id}\nkey: {key}\n(store it now: only its hash is kept, it cannot be shown again)", file=out)


def main() -> None:
    sys.exit(run(sys.argv[1:]))
