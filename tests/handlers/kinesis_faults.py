"""A thin stand-in for the AWS side of PutRecords that fails the way Kinesis does.

It forwards the entries that "succeed" to the real (moto) client and answers
like PutRecords: HTTP 200, FailedRecordCount, and an ErrorCode on each failed
entry in its original position; or it raises a whole-call throttling error.
"""
from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError


def throttling_error(operation: str = "PutRecords") -> ClientError:
    return ClientError(
        {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "Rate exceeded for shard"},
         "ResponseMetadata": {"HTTPStatusCode": 400}},
        operation,
    )


class FlakyKinesis:
    def __init__(self, real: Any, fail_plan: list[set[int]] | None = None, throttle_calls: int = 0, always_fail: bool = False) -> None:
        self.real = real
        self.fail_plan = list(fail_plan or [])
        self.throttle_calls = throttle_calls
        self.always_fail = always_fail
        self.calls: list[int] = []

    def put_records(self, StreamName: str, Records: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803 - boto3 names
        self.calls.append(len(Records))
        if self.throttle_calls > 0:
            self.throttle_calls -= 1
            raise throttling_error()
        failing = set(range(len(Records))) if self.always_fail else (self.fail_plan.pop(0) if self.fail_plan else set())
        passing = [r for i, r in enumerate(Records) if i not in failing]
        real = self.real.put_records(StreamName=StreamName, Records=passing)["Records"] if passing else []
        results = iter(real)
        merged = [
            {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "Rate exceeded for shard"}
            if i in failing
            else next(results)
            for i in range(len(Records))
        ]
        return {"FailedRecordCount": len(failing & set(range(len(Records)))), "Records": merged}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)
