"""Fixes for moto 5.2.5's Kinesis backend, applied inside the emulator process.

Two measured defects make moto unusable as the pipeline's stream
(docs: /work/shared/reference/aws-facts.md section 7):

* ``Shard.put_record`` reads the highest sequence number and then inserts
  ``max + 1`` without any lock, so two concurrent PutRecords calls can hand out
  the same sequence number and one record silently overwrites the other.  The
  werkzeug server behind moto is threaded, so this happens under real load.
* Every sequence-number lookup materialises the whole shard
  (``list(self.records.keys())[-1]``) and ``get_records`` walks the shard from
  its first record, so both get linearly slower as the shard fills.

The fixes keep moto's data model (an ordered dict of int -> Record per shard)
and its observable results; they only add a lock around the backend and keep a
sorted list of sequence numbers next to each shard's records so lookups are a
bisection instead of a scan.

DynamoDB has the same kind of defect (found here, not in the reference
sheet): UpdateItem reads the item, applies the expression and stores it
without a lock, so concurrent updates of one item lose some (8 threads x 250
``ADD n :one`` on one item ended at 1874 and 1932 instead of 2000).  On AWS an
UpdateItem is atomic per item, and the processor's conditional updates of the
devices table rely on it, so the DynamoDB backend gets a lock too.
"""
from __future__ import annotations

import functools
import threading
from bisect import bisect_right, insort
from collections import OrderedDict
from typing import Any, Callable

_APPLIED = False


class SortedRecords(OrderedDict):
    """Shard records that also keep their sequence numbers in a sorted list.

    Moto only ever inserts increasing sequence numbers, so the list is normally
    appended to; ``insort`` covers anything else.  Mutators that bypass
    ``__setitem__``/``__delitem__`` are caught by the length check in
    :func:`_keys_of`, which rebuilds the list.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._keys: list[int] = []
        super().__init__(*args, **kwargs)

    def __setitem__(self, key: int, value: Any) -> None:
        if key not in self:
            if not self._keys or key > self._keys[-1]:
                self._keys.append(key)
            else:
                insort(self._keys, key)
        super().__setitem__(key, value)

    def __delitem__(self, key: int) -> None:
        super().__delitem__(key)
        index = bisect_right(self._keys, key) - 1
        if index >= 0 and self._keys[index] == key:
            del self._keys[index]

    def clear(self) -> None:
        super().clear()
        self._keys = []


def _keys_of(records: Any) -> list[int]:
    """Sorted sequence numbers of a shard, without a scan when we can avoid it."""
    if isinstance(records, SortedRecords):
        if len(records._keys) != len(records):
            records._keys = sorted(records)
        return records._keys
    return sorted(records)


def _locked(method: Callable[..., Any], lock: threading.RLock) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return method(*args, **kwargs)

    wrapper.__localcloud_locked__ = True  # type: ignore[attr-defined]  # a marker against patching twice
    return wrapper


def lock_backend(backend_cls: type) -> None:
    """Serialise every public operation of a moto backend class with one re-entrant lock.

    Backend methods are pure Python on in-memory dicts (no I/O), so under the
    GIL the lock costs next to nothing; it only stops two request threads from
    interleaving inside one read-modify-write.
    """
    lock = threading.RLock()
    for name, member in list(vars(backend_cls).items()):
        if name.startswith("_") or not callable(member) or isinstance(member, (staticmethod, classmethod, type)):
            continue
        if getattr(member, "__localcloud_locked__", False):
            continue
        setattr(backend_cls, name, _locked(member, lock))


def apply() -> None:
    """Patch moto's Kinesis classes in this process (idempotent)."""
    global _APPLIED
    if _APPLIED:
        return
    from moto.kinesis import models

    shard_cls = models.Shard
    original_init = shard_cls.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:  # noqa: N807 - replaces the shard class's __init__
        original_init(self, *args, **kwargs)
        self.records = SortedRecords()

    def get_min_sequence_number(self: Any) -> int:
        keys = _keys_of(self.records)
        return keys[0] if keys else 0

    def get_max_sequence_number(self: Any) -> int:
        keys = _keys_of(self.records)
        return keys[-1] if keys else 0

    def get_records(self: Any, last_sequence_id: str, limit: int | None) -> tuple[list[Any], int, int]:
        # Same results as moto's scan: records after last_sequence_id, oldest
        # first, at most `limit`, and how far the last one returned lags the tip.
        last_sequence_int = int(last_sequence_id)
        keys = _keys_of(self.records)
        start = bisect_right(keys, last_sequence_int)
        end = len(keys) if limit is None else min(len(keys), start + limit)
        results = [self.records[key] for key in keys[start:end]]
        millis_behind_latest = 0
        if results:
            last_sequence_int = keys[end - 1]
            newest = self.records[keys[-1]]
            millis_behind_latest = int((newest.created_at - results[-1].created_at) * 1000)
        return results, last_sequence_int, millis_behind_latest

    shard_cls.__init__ = __init__
    shard_cls.get_min_sequence_number = get_min_sequence_number
    shard_cls.get_max_sequence_number = get_max_sequence_number
    shard_cls.get_records = get_records

    # One lock per backend: every public operation reads or writes dicts that
    # are not safe to share between request threads.
    from moto.dynamodb.models import DynamoDBBackend

    lock_backend(models.KinesisBackend)
    lock_backend(DynamoDBBackend)
    _APPLIED = True


def applied() -> bool:
    return _APPLIED
