"""``python -m admin replay``: flags, AWS clients, the per-message report and exit codes.

Exit codes:
  0  every DLQ message handled was replayed in full and deleted (or, with --dry-run,
     could be); also when the DLQ is empty
  1  at least one message was kept: part of its range expired from the stream, or
     records are still refused, or a service error; each is reported with its reason
     (storing failing outright stops the run: the rest would fail the same way)
  2  usage or setup error: a bad flag, an unreadable stack file, the DLQ or the
     processor's configuration not readable (credentials, permissions, endpoint)
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, TextIO

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from .common import EXIT_USAGE, CliError, aws_client, load_stack_file

EXIT_OK = 0
EXIT_KEPT = 1
# Bounded calls (botocore's defaults would wait 60 s on a hung read). DynamoDB's retries
# are the processor code's own (throttling, 5xx, lost connections, within the replay's
# budget), with botocore's off exactly as in handlers/processor.py, whose comment says why.
CLIENT_CONFIG = Config(connect_timeout=5, read_timeout=30, retries={"mode": "standard", "total_max_attempts": 3})
DYNAMODB_CONFIG = Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "total_max_attempts": 1})


def _count(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {raw!r}")
    return value


def add_parser(commands: Any) -> None:
    replay = commands.add_parser(
        "replay", help="re-store the batches the processor gave up on (its DLQ), from the stream",
        description="Read each DLQ message's shard and sequence range back from the stream, store the records "
                    "through the processor's own code, and delete the message once all of them are stored. "
                    "Exit 0: all replayed; 1: some messages kept (see the report); 2: usage or setup error.",
    )
    replay.add_argument("--stack-file", dest="replay_stack_file", type=Path, metavar="FILE",
                        help="stack outputs: .localcloud/stack.json or the file of `pulumi stack output --json`")
    replay.add_argument("--dry-run", action="store_true", help="read and report; write nothing, delete nothing")
    replay.add_argument("--max", dest="max_messages", type=_count, metavar="N", help="handle at most N DLQ messages")
    replay.add_argument("--discard-expired", action="store_true",
                        help="also delete a message whose range (partly) expired from the stream, once the rest is stored")
    replay.add_argument("--json", action="store_true", help="print the report as one JSON document")


def _region_of(outputs: dict[str, Any]) -> str | None:
    """The stack's region, from its stream ARN (arn:aws:kinesis:<region>:<account>:stream/<name>)."""
    parts = str(outputs.get("streamArn", "")).split(":")
    return parts[3] if len(parts) > 5 and parts[3] else None


def run_replay(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .replay import Replayer, ReplaySetupError, processor_target  # the processor's code: only when replaying

    try:
        stack_file = args.replay_stack_file or args.stack_file
        if stack_file is None:
            raise CliError("say which stack: replay --stack-file FILE (.localcloud/stack.json, or "
                           "`pulumi stack output --json > outputs.json` for AWS)")
        outputs = load_stack_file(stack_file)
        endpoint = args.endpoint_url or outputs.get("endpointUrl")
        region = args.region or _region_of(outputs)
        clients = {name: aws_client(name, endpoint, region, DYNAMODB_CONFIG if name == "dynamodb" else CLIENT_CONFIG)
                   for name in ("sqs", "kinesis", "dynamodb", "lambda")}
        target = processor_target(outputs, clients["lambda"], clients["sqs"].meta.region_name)
        replayer = Replayer(target, sqs=clients["sqs"], kinesis=clients["kinesis"], dynamodb=clients["dynamodb"],
                            dry_run=args.dry_run, discard_expired=args.discard_expired,
                            max_messages=args.max_messages)
        report = replayer.run(on_message=None if args.json else (lambda m: _print_message(m, out)))
    except (CliError, ReplaySetupError) as exc:
        print(f"error: {exc}", file=err)
        return EXIT_USAGE
    except ClientError as exc:
        error = exc.response.get("Error", {})
        print(f"error: {exc.operation_name} refused: {error.get('Code', '')}: {error.get('Message', '')}"
              " (check the stack file, credentials and the permissions listed in the README)", file=err)
        return EXIT_USAGE
    except BotoCoreError as exc:
        print(f"error: cannot reach AWS: {exc} (check --endpoint-url, --region and credentials)", file=err)
        return EXIT_USAGE
    if args.json:
        print(json.dumps(report.to_json(), indent=2, sort_keys=True), file=out)
    else:
        _print_summary(report.to_json(), out)
    return EXIT_OK if report.clean else EXIT_KEPT


def _print_message(m: Any, out: TextIO) -> None:
    where = f"{m.shard_id} {m.start}..{m.end} ({m.batch_size} record(s))" if m.shard_id else "?"
    fate = "deleted" if m.deleted else "kept in the DLQ"
    line = f"{m.status:<12} {m.message_id}  {where}: {m.records_read} read, {m.readings_stored} reading(s) stored, {fate}"
    print(line + (f"\n    {m.reason}" if m.reason else ""), file=out)
    for failure in m.failing:
        print(f"    record {failure['sequenceNumber']}: {failure['reason']}", file=out)


def _print_summary(doc: dict[str, Any], out: TextIO) -> None:
    counts = ", ".join(f"{n} {status}" for status, n in sorted(doc["counts"].items())) or "the DLQ is empty"
    dry = " (dry run: nothing written or deleted)" if doc["dryRun"] else ""
    if doc["stopped"]:
        print(f"{doc['stopped']}; the messages after it were not tried and stay in the DLQ", file=out)
    print(f"{len(doc['messages'])} message(s): {counts}; {doc['deleted']} deleted{dry}", file=out)
