"""Alarm drills: every declared alarm driven to ALARM by a realistic fault on the local cloud,
its notification checked on the alarm's SNS topic, the fault stopped, OK and its notification
checked, and no re-alarm without new breaching data.

``catalogue.DRILLS`` holds one drill per alarm id (the Pulumi program knows nothing of them);
``runner.DrillRun`` runs them against a time-scaled ``LocalCloud``; ``python -m localcloud drill``
is the command. See docs/alarms.md for each alarm's drill and notification.
"""
