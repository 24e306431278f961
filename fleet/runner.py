"""One fleet run, start to finish: credentials, sending, read-back, alarms, report.

Kept separate from the CLI so the demo, the benchmark and the end-to-end test
run exactly what `python -m fleet run` runs.
"""
from __future__ import annotations

import datetime as dt
import random
import shutil
import sys
import threading
import time
from typing import Any, Callable

from . import alarms as alarm_check
from .client import ApiClient, Response
from .config import ConfigError, FleetConfig
from .devices import Credentials, Device, OutgoingRequest, build_fleet
from .ledger import Ledger
from .pool import SenderPool
from .registration import load_keys, register, save_keys
from .report import FleetReport
from .scheduler import dispatch, plan
from .targets import Targets, client, resolve
from .verify import ReadingsTable, Verification, verify


class RunError(RuntimeError):
    """The run cannot start (API not answering, no way to get device credentials)."""


def _progress(total: int, enabled: bool, desc: str, unit: str) -> Any:
    """A tqdm bar on stderr, or a no-op when disabled or stderr is not a terminal."""
    from tqdm import tqdm

    # A terminal that reports 0 columns (some ptys) makes tqdm draw nothing; fall back to 100.
    width = shutil.get_terminal_size((100, 24)).columns or 100
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=False,
                disable=not (enabled and sys.stderr.isatty()), ncols=width)


def check_health(api_url: str, timeout: float) -> None:
    resp = ApiClient(api_url, timeout=timeout, retries=2).health()
    if resp.status != 200:
        detail = resp.error or f"HTTP {resp.status} {resp.body[:200]!r}"
        raise RunError(f"the API at {api_url} did not answer GET /health with 200: {detail}")


def credentials_for(config: FleetConfig, targets: Targets) -> list[Credentials]:
    if config.keys_file is not None:
        creds = load_keys(config.keys_file)
        return creds[: config.devices] if config.devices < len(creds) else creds
    if not targets.devices_table:
        raise ConfigError("no devices table to register devices in: give --stack-file or --table, or --keys FILE")
    bar = _progress(config.devices, config.progress, "registering", "dev")
    try:
        creds = register(client("dynamodb", targets), targets.devices_table, config.devices, on_progress=lambda _: bar.update(1))
    finally:
        bar.close()
    if config.save_keys is not None:
        save_keys(config.save_keys, creds)
    return creds


def _alarm_snapshot(cw: Any, topic: str | None) -> tuple[dict[str, str] | None, str | None]:
    try:
        return alarm_check.snapshot(cw, topic), None
    except Exception as exc:  # noqa: BLE001 - unreachable or not permitted: the report says so, the run goes on
        return None, f"{type(exc).__name__}: {exc}"


def run(
    config: FleetConfig,
    *,
    now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    before_alarm_check: Callable[[], object] | None = None,
) -> FleetReport:
    """Run the fleet. `before_alarm_check` lets the local cloud evaluate its alarms right before the
    after-run snapshot, instead of on its next timer tick."""
    targets = resolve(config)
    check_health(targets.api_url, config.timeout)
    creds = credentials_for(config, targets)
    rng = random.Random(config.seed)
    devices = build_fleet(creds, payload_metrics=config.payload_metrics, misbehaving_share=config.misbehaving, rng=rng,
                          greedy=config.greedy)
    notes: list[str] = []
    greedy = [d for d in devices if d.greedy]
    if greedy:
        set_greedy_quotas(greedy, config, targets)

    cw = None
    before: dict[str, str] | None = None
    alarm_error: str | None = None
    try:
        cw = client("cloudwatch", targets)
        before, alarm_error = _alarm_snapshot(cw, targets.alarm_topic_arn)
    except Exception as exc:  # noqa: BLE001 - any failure to reach CloudWatch is reported, the run goes on
        alarm_error = f"{type(exc).__name__}: {exc}"
    run_started = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)

    ledger = Ledger()
    # The whole plan up front (it is small: rate x duration entries), so "planned" is what will
    # really be sent, not rate x duration rounded, which jitter makes differ by a request or two.
    slots, rate = send_slots(devices, config)
    schedule = list(plan(slots, rate=rate, duration=config.duration, jitter=config.jitter, rng=rng))
    planned = len(schedule)
    bar = _progress(planned, config.progress, "sending", "req")
    bar_lock = threading.Lock()

    def on_result(request: OutgoingRequest, response: Response) -> None:
        ledger.record(request, response)
        with bar_lock:
            bar.update(1)
            if ledger.requests % 50 == 0:
                bar.set_postfix(accepted=ledger.accepted_requests, unexpected=ledger.unexpected_total, refresh=False)

    pool = SenderPool(lambda: ApiClient(targets.api_url, timeout=config.timeout, retries=config.retries),
                      config.workers, on_result).start()
    stop = threading.Event()
    interrupted = False
    first_post = time.monotonic()
    stats = None

    def send(device: Device) -> None:
        pool.submit(device.next_request(config.readings_per_request, now_ms()))

    # An API slower than the offered load makes the scheduler fall behind; stop sending a little after
    # the planned duration instead of running on, so a run's length stays bounded (demo: 3 minutes).
    deadline = threading.Timer(config.duration + max(1.0, 0.1 * config.duration), stop.set)
    deadline.daemon = True
    deadline.start()
    try:
        stats = dispatch(iter(schedule), send, stop=stop)
        if stats.stopped_early:
            notes.append(f"the API could not keep up: {planned - stats.scheduled} planned requests were not sent "
                         "by the deadline (duration + 10%)")
        pool.drain_and_stop()
    except KeyboardInterrupt:
        interrupted = True
        stop.set()
        pool.abandon()
        notes.append("interrupted: queued requests were dropped; the counts cover what was sent")
    finally:
        deadline.cancel()
        bar.close()
    send_seconds = time.monotonic() - first_post
    if pool.errors:
        notes.append(f"{len(pool.errors)} internal errors in senders, first: {pool.errors[0]!r}")

    verification = Verification()
    if not config.verify:
        verification.error = "skipped (--no-verify)"
    elif not targets.readings_table:
        verification.error = "no readings table (give --stack-file or --readings-table)"
    else:
        try:
            table = ReadingsTable(client("dynamodb", targets), targets.readings_table, targets.devices_table)
            verification = verify(ledger, table, timeout_s=5.0 if interrupted else config.drain_timeout)
        except Exception as exc:  # noqa: BLE001 - a failed verification is reported, never hides the run's report
            verification.error = f"{type(exc).__name__}: {exc}"

    changes = None
    if before_alarm_check is not None:
        before_alarm_check()
    if cw is not None and before is not None:
        after, alarm_error = _alarm_snapshot(cw, targets.alarm_topic_arn)
        if after is not None:
            transitions: dict[str, list[str]] = {}
            if targets.endpoint_url is None:  # moto 5.2.5 does not implement DescribeAlarmHistory
                try:
                    transitions = alarm_check.history(client("cloudwatch", targets, max_attempts=1), run_started,
                                                      set(before) | set(after))
                except Exception as exc:  # noqa: BLE001 - history is optional; states are still compared
                    notes.append(f"alarm history unavailable ({type(exc).__name__}); compared states only")
            changes = alarm_check.changes(before, after, transitions)

    stored_window = None
    if verification.all_stored_at is not None and verification.stored:
        # Polling granularity: the true moment is at most one poll (0.25 s plus a BatchGetItem) earlier.
        stored_window = verification.all_stored_at - first_post
    return FleetReport(
        ledger=ledger,
        verification=verification,
        devices=len(devices),
        misbehaving_devices=sum(d.misbehaving for d in devices),
        send_seconds=send_seconds,
        planned_requests=planned,
        max_schedule_lag_s=stats.max_lag_s if stats else 0.0,
        interrupted=interrupted,
        alarm_changes=changes,
        alarm_error=alarm_error,
        first_post_to_last_stored_s=stored_window,
        notes=notes,
        verify_requested=config.verify,
        greedy_quota=config.greedy_quota if greedy else None,
        greedy_devices=[d.device_id for d in greedy],
    )


def set_greedy_quotas(greedy: list[Device], config: FleetConfig, targets: Targets) -> None:
    """Give each greedy device its own small daily quota, through the operators' registry."""
    if not targets.devices_table:
        raise ConfigError("--greedy needs the devices table to set their quota: give --stack-file or --table, or --greedy 0")
    from admin.registry import DeviceRegistry  # the admin library is the only owner of the devices table

    registry = DeviceRegistry(client("dynamodb", targets), targets.devices_table)
    for device in greedy:
        registry.set_quota(device.device_id, config.greedy_quota)


def send_slots(devices: list[Device], config: FleetConfig) -> tuple[list[Device], float]:
    """(send slots, fleet rate) for the scheduler: a greedy device gets ``greedy_factor`` slots, so it
    sends that many times as often as each other device. The fleet's total stays ``--rate``: the demo's
    fleet already sends at dev's stage throttle rate, and a greedy device must show the quota, not make
    the stage throttle the others."""
    extra = [d for d in devices if d.greedy for _ in range(max(0, round(config.greedy_factor) - 1))]
    return devices + extra, config.effective_rate
