"""Shared fixtures for the local cloud's tests (provisioner, emulator, cloud, data plane)."""
from __future__ import annotations

from typing import Iterator

import pytest

from localcloud.emulator import Emulator


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    """One emulator (moto in a child process) for the session; tests use unique resource names."""
    emu = Emulator().start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture()
def clean_faults(emulator: Emulator) -> Iterator[Emulator]:
    """The session emulator with no fault rules before and after the test (rules outlive a failed test)."""
    emulator.clear_faults()
    yield emulator
    emulator.clear_faults()
