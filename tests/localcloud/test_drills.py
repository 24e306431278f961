"""Alarm drills: every alarm in the catalogue has one, and the command's report and arguments."""
from __future__ import annotations

import json

import pytest

from localcloud.__main__ import main
from localcloud.drills.catalogue import DRILLS
from localcloud.drills.runner import DrillResult, table
from settings.alarm_catalog import ALARM_IDS


def test_every_alarm_in_the_catalogue_has_a_drill() -> None:
    """A new alarm cannot ship undrilled: add its fault to localcloud/drills/catalogue.py."""
    assert sorted(set(ALARM_IDS) - set(DRILLS)) == []
    assert sorted(set(DRILLS) - set(ALARM_IDS)) == []  # no drill for an alarm that no longer exists
    assert all(len(d.fault) > 10 for d in DRILLS.values())


def test_the_table_shows_each_alarm_and_why_one_failed() -> None:
    ok = DrillResult("api-5xx", "x-api-5xx", "PutRecords refused", 3.2, True, 4.1, True, 0, True)
    bad = DrillResult("api-4xx", "x-api-4xx", "unknown devices", 3.0, True, 5.0, True, 1, False,
                      "1 re-alarm(s) after OK without new breaching data")
    text = table([ok, bad])
    assert "api-5xx" in text and "3.2 s" in text and "pass" in text and "FAIL" in text
    assert "1 of 2 alarms passed" in text and "api-4xx: 1 re-alarm(s)" in text
    assert json.loads(json.dumps(bad.to_json()))["re_alarms"] == 1


def test_an_unknown_alarm_id_is_refused_with_the_allowed_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["drill", "--alarm", "no-such-alarm"]) == 2
    err = capsys.readouterr().err
    assert "--alarm 'no-such-alarm'" in err and "api-5xx" in err and "processor-stalled" in err
    assert main(["drill", "--time-scale", "0"]) == 2
    assert "--time-scale" in capsys.readouterr().err


def test_prod_redrills_only_what_differs_from_dev() -> None:
    """prod overrides api-4xx and api-latency-p99, and changes the processor's timeout, batching,
    parallelization, retries and reserved concurrency and the stream mode; nothing else differs."""
    from localcloud.drills.catalogue import differing_alarms

    assert differing_alarms("dev", "dev") == []
    differing = set(differing_alarms("prod", "dev"))
    assert {"api-4xx", "api-latency-p99", "processor-duration", "processor-iterator-age",
            "stream-iterator-age", "dlq-messages-visible", "processor-throttles"} <= differing
    assert not differing & {"api-5xx", "ingest-errors", "readings-system-errors", "devices-get-system-errors"}
