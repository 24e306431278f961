"""What IAM enforcement costs per call in the emulator (``python -m benchmarks.iam_overhead``).

The same calls are made against one enforcing emulator, alternately as the
administrator (not checked: the reference) and under a role (mapped, its policy
evaluated, the body parsed), so machine load hits both alike. The figure to
compare between runs is the ratio of the medians, role / administrator: a
500-record PutRecords (the ingest function's largest call) and a 25-item
BatchWriteItem (the processor's).
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

from localcloud.emulator import Emulator
from localcloud.iam_identity import assume_role, role_client


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def _timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def run(rounds: int) -> dict[str, dict[str, float]]:
    with Emulator() as emu:
        name = f"bench-{uuid.uuid4().hex[:6]}"
        emu.client("kinesis").create_stream(StreamName=name, ShardCount=1)
        emu.client("dynamodb").create_table(
            TableName=name, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
        iam = emu.client("iam")
        trust = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["kinesis:PutRecords"], "Resource": [f"arn:aws:kinesis:us-east-1:123456789012:stream/{name}"]},
            {"Effect": "Allow", "Action": ["dynamodb:BatchWriteItem"], "Resource": [f"arn:aws:dynamodb:us-east-1:123456789012:table/{name}"]},
        ]}))
        creds = assume_role(emu.endpoint_url, emu.region, arn, "bench")
        clients = {
            "admin": (emu.client("kinesis"), emu.client("dynamodb")),
            "role": (role_client("kinesis", emu.endpoint_url, emu.region, creds),
                     role_client("dynamodb", emu.endpoint_url, emu.region, creds)),
        }
        records = [{"Data": b"x" * 180, "PartitionKey": f"dev-{i}"} for i in range(500)]
        samples: dict[str, dict[str, list[float]]] = {who: {"PutRecords x500": [], "BatchWriteItem x25": []}
                                                      for who in clients}
        for r in range(rounds):
            for who, (kinesis, dynamodb) in clients.items():
                items = [{"PutRequest": {"Item": {"id": {"S": f"{who}-{r}-{i}"}}}} for i in range(25)]
                samples[who]["PutRecords x500"].append(_timed(lambda k=kinesis: k.put_records(StreamName=name, Records=records)))
                samples[who]["BatchWriteItem x25"].append(
                    _timed(lambda d=dynamodb, i=items: d.batch_write_item(RequestItems={name: i})))
        return {call: {"admin_ms": _median_ms(samples["admin"][call]), "role_ms": _median_ms(samples["role"][call]),
                       "ratio": statistics.median(samples["role"][call]) / statistics.median(samples["admin"][call])}
                for call in samples["admin"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.iam_overhead", description=__doc__)
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args(argv)
    for call, figures in run(args.rounds).items():
        print(f"{call:<20} admin {figures['admin_ms']:7.2f} ms   role {figures['role_ms']:7.2f} ms   "
              f"ratio {figures['ratio']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
