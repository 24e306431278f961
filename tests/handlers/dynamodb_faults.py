"""A thin stand-in for the AWS side of DynamoDB writes that fails the way DynamoDB does.

BatchWriteItem: the first ``throttled_calls`` calls are refused whole with
ProvisionedThroughputExceededException (nothing written); the first
``unprocessed_calls`` calls write only the first half
of the items and hand the rest back in UnprocessedItems (what a partly
throttled batch looks like). ``invalid_devices``: any call touching those
devices raises ValidationException, as DynamoDB does for an invalid item.
``burst``: the next calls of BatchWriteItem fail with these errors in turn (an
error code, answered with HTTP 500 for DynamoDB's 5xx codes, or a botocore
transport exception instance); ``update_burst`` does the same for UpdateItem.
Everything else goes to the real (moto) client.
"""
from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

SERVER_SIDE = frozenset({"InternalServerError", "ServiceUnavailable"})


def client_error(code: str, operation: str, message: str = "injected") -> ClientError:
    status = 500 if code in SERVER_SIDE else 400
    return ClientError({"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}, operation)


def _raise_next(burst: list[str | Exception], operation: str) -> None:
    if burst:
        fault = burst.pop(0)
        raise fault if isinstance(fault, Exception) else client_error(fault, operation)


class FlakyDynamo:
    def __init__(self, real: Any, unprocessed_calls: int = 0, invalid_devices: frozenset[str] = frozenset(),
                 fail_code: str | None = None, throttled_calls: int = 0,
                 burst: list[str | Exception] | None = None, update_burst: list[str | Exception] | None = None) -> None:
        self.real = real
        self.burst = list(burst or [])
        self.update_burst = list(update_burst or [])
        self.update_calls = 0
        self.throttled_calls = throttled_calls
        self.unprocessed_calls = unprocessed_calls
        self.invalid_devices = invalid_devices
        self.fail_code = fail_code
        self.batch_sizes: list[int] = []

    def batch_write_item(self, RequestItems: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:  # noqa: N803 - boto3 names
        (table, requests), = RequestItems.items()
        self.batch_sizes.append(len(requests))
        if self.fail_code:
            raise client_error(self.fail_code, "BatchWriteItem")
        _raise_next(self.burst, "BatchWriteItem")
        if self.throttled_calls > 0:
            self.throttled_calls -= 1
            raise client_error("ProvisionedThroughputExceededException", "BatchWriteItem", "Throughput exceeds the current capacity")
        if any(r["PutRequest"]["Item"]["deviceId"]["S"] in self.invalid_devices for r in requests):
            raise client_error("ValidationException", "BatchWriteItem", "One or more parameter values were invalid")
        if self.unprocessed_calls > 0 and len(requests) > 1:
            self.unprocessed_calls -= 1
            half = len(requests) // 2
            self.real.batch_write_item(RequestItems={table: requests[:half]})
            return {"UnprocessedItems": {table: requests[half:]}}
        if self.unprocessed_calls > 0:
            self.unprocessed_calls -= 1
            return {"UnprocessedItems": {table: requests}}
        return self.real.batch_write_item(RequestItems=RequestItems)

    def update_item(self, **kwargs: Any) -> dict[str, Any]:
        self.update_calls += 1
        _raise_next(self.update_burst, "UpdateItem")
        return self.real.update_item(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)
