"""The policy pack's entry point: the Pulumi CLI runs this file to serve the policies.

Constructing ``PolicyPack`` starts the policy server and blocks until the CLI is done, so this is
the only place that does it; the policies themselves live in policy/policies.py.
"""
from __future__ import annotations

import sys
from pathlib import Path

# The pack reuses the project's own catalogue (components/alarms) and constants (components/function),
# so the repository root must be importable whatever directory the CLI starts us in.
PROJECT_DIR = Path(__file__).resolve().parent.parent
if str(PROJECT_DIR) not in sys.path:
    sys.path.insert(0, str(PROJECT_DIR))

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402 - after the sys.path entry above

from policy.policies import POLICIES  # noqa: E402 - after the sys.path entry above

PolicyPack(
    name="iot-ingest-guardrails",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=POLICIES,
)
