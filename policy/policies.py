"""The guard rails of an iot-ingest stack, as CrossGuard policies.

Importable on purpose: constructing ``PolicyPack`` starts the policy server and blocks, so only
policy/__main__.py does that; the offline runner (policy/check.py) and the tests use ``POLICIES``.

Policies read resource *inputs* (CrossGuard passes inputs to resource policies and the stack's
resources to stack policies); during a preview a value that is not known yet is skipped by the SDK
and checked again on `pulumi up`. Property names are the engine's camelCase ones.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from components.function import XRAY_ACTIONS

from . import catalog

ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
IAM_POLICY = "aws:iam/policy:Policy"
IAM_ROLE = "aws:iam/role:Role"
KINESIS_STREAM = "aws:kinesis/stream:Stream"
DYNAMODB_TABLE = "aws:dynamodb/table:Table"
SQS_QUEUE = "aws:sqs/queue:Queue"
SNS_TOPIC = "aws:sns/topic:Topic"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
HTTP_STAGE = "aws:apigatewayv2/stage:Stage"
MAPPING = "aws:lambda/eventSourceMapping:EventSourceMapping"
METRIC_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


def _listify(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _statements(document: Any) -> list[Mapping[str, Any]]:
    doc = json.loads(document) if isinstance(document, str) else document
    if not isinstance(doc, Mapping):
        return []
    return [s for s in _listify(doc.get("Statement")) if isinstance(s, Mapping)]


def _iam_documents(args: ResourceValidationArgs) -> list[tuple[str, Any]]:
    """(where, policy document) pairs of the IAM resources that carry permission policies."""
    props = args.props
    if args.resource_type in (ROLE_POLICY, IAM_POLICY):
        return [("policy", props.get("policy"))]
    if args.resource_type == IAM_ROLE:
        return [(f"inlinePolicies[{p.get('name')}]", p.get("policy")) for p in _listify(props.get("inlinePolicies"))
                if isinstance(p, Mapping)]
    return []


# ---- IAM ------------------------------------------------------------------------------------------------
def _no_iam_wildcards(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for where, document in _iam_documents(args):
        if document is None:
            continue
        for i, s in enumerate(_statements(document)):
            if s.get("Effect", "Allow") != "Allow":
                continue
            actions = [str(a) for a in _listify(s.get("Action"))]
            if "NotAction" in s or "NotResource" in s:
                report(f"{where} statement {i} uses NotAction/NotResource, which grants everything not listed. "
                       "Remediation: list the exact actions and resources instead.", None)
            wild = [a for a in actions if "*" in a]
            if wild:
                report(f"{where} statement {i} allows wildcard action(s) {wild}. "
                       "Remediation: name each API action the function calls (e.g. kinesis:PutRecords).", None)
            if "*" in [str(r) for r in _listify(s.get("Resource"))] and not set(actions) <= set(XRAY_ACTIONS):
                others = sorted(set(actions) - set(XRAY_ACTIONS))
                report(f"{where} statement {i} grants {others} on Resource \"*\"; only the X-Ray actions "
                       f"{list(XRAY_ACTIONS)} may (they have no resource types). "
                       "Remediation: scope the statement to the ARNs of this stack's resources.", None)


# ---- encryption at rest ---------------------------------------------------------------------------------
def _encryption_at_rest(args: ResourceValidationArgs, report: ReportViolation) -> None:
    p, t = args.props, args.resource_type
    if t == KINESIS_STREAM and (p.get("encryptionType") != "KMS" or not p.get("kmsKeyId")):
        report("the Kinesis stream is not encrypted at rest (encryptionType must be KMS with a kmsKeyId). "
               "Remediation: set encryption_type=\"KMS\" and kms_key_id=\"alias/aws/kinesis\" or a key ARN.", None)
    elif t == DYNAMODB_TABLE and not (p.get("serverSideEncryption") or {}).get("enabled"):
        report("the DynamoDB table uses the AWS owned key, which you cannot audit or control. Remediation: set "
               "server_side_encryption={\"enabled\": True} (AWS managed key) or give a kms_key_arn.", None)
    elif t == SQS_QUEUE and not (p.get("sqsManagedSseEnabled") or p.get("kmsMasterKeyId")):
        report("the SQS queue is not encrypted at rest. "
               "Remediation: set sqs_managed_sse_enabled=True or kms_master_key_id.", None)
    elif t == SNS_TOPIC and not p.get("kmsMasterKeyId"):
        report("the SNS topic is not encrypted at rest. Remediation: set kms_master_key_id to a key whose policy "
               "lets cloudwatch.amazonaws.com use it (alias/aws/sns does not), as components/alarms/topic.py does.",
               None)


# ---- logs -----------------------------------------------------------------------------------------------
def _finite_log_retention(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != LOG_GROUP:
        return
    days = args.props.get("retentionInDays")
    if not isinstance(days, int | float) or days <= 0:
        report(f"log group keeps its events forever (retentionInDays={days!r}). "
               "Remediation: set retention_in_days (iot-ingest:logRetentionDays) to a CloudWatch Logs value "
               "such as 3, 30 or 90.", None)


# ---- HTTP API -------------------------------------------------------------------------------------------
def _stage_throttling(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != HTTP_STAGE:
        return
    route = args.props.get("defaultRouteSettings") or {}
    limits = {k: route.get(k) for k in ("throttlingBurstLimit", "throttlingRateLimit")}
    missing = [k for k, v in limits.items() if not isinstance(v, int | float) or v <= 0]
    if missing:
        report(f"the HTTP API stage has no {' / '.join(missing)} in defaultRouteSettings, so one device can use the "
               "account-wide API Gateway quota. Remediation: set both throttling_burst_limit and throttling_rate_limit "
               "(iot-ingest:apiThrottleBurst and apiThrottleRate).", None)


# ---- Kinesis event source mappings ----------------------------------------------------------------------
def _is_stream_mapping(props: Mapping[str, Any]) -> bool:
    source = props.get("eventSourceArn")
    return isinstance(source, str) and source.startswith("arn:") and ":kinesis:" in source


def _mapping_failure_handling(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != MAPPING or not _is_stream_mapping(args.props):
        return
    p = args.props
    problems = []
    if "ReportBatchItemFailures" not in _listify(p.get("functionResponseTypes")):
        problems.append("function_response_types lacks ReportBatchItemFailures (one bad record retries the batch)")
    if p.get("bisectBatchOnFunctionError") is not True:
        problems.append("bisect_batch_on_function_error is not true (a poison record is never isolated)")
    retries = p.get("maximumRetryAttempts")
    if not isinstance(retries, int | float) or retries < 0:
        problems.append(f"maximum_retry_attempts is {retries!r}, not a finite count (default -1 retries until expiry)")
    age = p.get("maximumRecordAgeInSeconds")
    if not isinstance(age, int | float) or age < 0:
        problems.append(f"maximum_record_age_in_seconds is {age!r}, not a finite age (default -1: until expiry)")
    if not ((p.get("destinationConfig") or {}).get("onFailure") or {}).get("destinationArn"):
        problems.append("no destination_config.on_failure (failed batches are dropped without a trace)")
    for problem in problems:
        report(f"Kinesis event source mapping: {problem}. Remediation: see components/processor.py for a mapping "
               "that reports item failures, bisects, bounds retries and record age and sends failures to an SQS DLQ.",
               None)


# ---- alarms ---------------------------------------------------------------------------------------------
def _alarms(resources: Iterable[Any]) -> list[Any]:
    return [r for r in resources if r.resource_type == METRIC_ALARM]


def _alarm_actions_one_topic(args: StackValidationArgs, report: ReportViolation) -> None:
    topics: dict[str, list[str]] = {}
    for r in _alarms(args.resources):
        alarm, ok = _listify(r.props.get("alarmActions")), _listify(r.props.get("okActions"))
        if len(alarm) != 1 or not str(alarm[0]).startswith("arn:") or ":sns:" not in str(alarm[0]) or ok != alarm:
            report(f"alarm {r.name} notifies {alarm} on ALARM and {ok} on OK; every alarm must send both to the same "
                   "single SNS topic so on-call sees it fire and clear. Remediation: alarm_actions=[topic.arn] and "
                   "ok_actions=[topic.arn], as components/alarms/spec.py does.", r.urn)
            continue
        topics.setdefault(str(alarm[0]), []).append(r.name)
    if len(topics) > 1:
        for topic, names in sorted(topics.items()):
            report(f"alarms {sorted(names)} notify {topic}, but the stack's alarms use {len(topics)} different topics. "
                   "Remediation: point every alarm at the stack's one alarm topic.", None)


def _alarm_metrics_published(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != METRIC_ALARM:
        return
    known = catalog.published_metrics()
    p = args.props
    queries: list[Mapping[str, Any]] = [q["metric"] for q in _listify(p.get("metricQueries"))
                                         if isinstance(q, Mapping) and isinstance(q.get("metric"), Mapping)]
    metrics = [(p.get("namespace"), p.get("metricName"), p.get("dimensions"))] if not queries else [
        (m.get("namespace"), m.get("metricName"), m.get("dimensions")) for m in queries]
    for namespace, metric, dims in metrics:
        if not catalog.matches(namespace, metric, dims, known):
            report(f"alarm watches {namespace} {metric} with dimensions {sorted(dict(dims or {}))}, which is not a "
                   "metric/dimension set AWS publishes (per the project's alarm catalogue, components/alarms); such an "
                   "alarm never leaves INSUFFICIENT_DATA. Remediation: use one of: " + catalog.describe(known), None)


# ---- protection -----------------------------------------------------------------------------------------
def _protected_tables_recoverable(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != DYNAMODB_TABLE or not args.opts.protect:
        return
    p = args.props
    if not (p.get("pointInTimeRecovery") or {}).get("enabled"):
        report("the table is protected (Pulumi protect) but has no point-in-time recovery, so a bad write cannot be "
               "undone. Remediation: set iot-ingest:pointInTimeRecovery: true on stacks with iot-ingest:protect: true.",
               None)
    if p.get("deletionProtectionEnabled") is not True:
        report("the table is protected in Pulumi but not in DynamoDB (deletionProtectionEnabled), so it can still be "
               "deleted outside Pulumi. Remediation: set deletion_protection_enabled=True with protect=True.", None)


MANDATORY = EnforcementLevel.MANDATORY

POLICIES: list[Policy] = [
    ResourceValidationPolicy(
        name="iam-no-wildcards",
        description="IAM policies name exact actions and resources: no '*' in actions, no NotAction/NotResource, "
                    "and Resource '*' only for the X-Ray actions, which have no resource types.",
        validate=_no_iam_wildcards, enforcement_level=MANDATORY),
    ResourceValidationPolicy(
        name="encryption-at-rest",
        description="Kinesis streams, DynamoDB tables, SQS queues and SNS topics are encrypted at rest with KMS "
                    "(or SQS managed SSE).",
        validate=_encryption_at_rest, enforcement_level=MANDATORY),
    ResourceValidationPolicy(
        name="log-retention-finite",
        description="Every CloudWatch log group sets a finite retention, so logs do not accumulate (and bill) forever.",
        validate=_finite_log_retention, enforcement_level=MANDATORY),
    ResourceValidationPolicy(
        name="http-api-stage-throttled",
        description="The HTTP API stage sets both a throttle burst and a rate limit for its default route.",
        validate=_stage_throttling, enforcement_level=MANDATORY),
    ResourceValidationPolicy(
        name="kinesis-mapping-failure-handling",
        description="Every Kinesis event source mapping reports batch item failures, bisects failing batches, "
                    "bounds retries and record age, and sends what it gives up on to an on-failure destination.",
        validate=_mapping_failure_handling, enforcement_level=MANDATORY),
    StackValidationPolicy(
        name="alarms-notify-one-topic",
        description="Every metric alarm sends ALARM and OK to the same single SNS topic, the same one for all alarms.",
        validate=_alarm_actions_one_topic, enforcement_level=MANDATORY),
    ResourceValidationPolicy(
        name="alarm-metric-published",
        description="Every alarm watches a namespace/metric/dimension set that AWS publishes (as listed by the "
                    "project's alarm catalogue), so it can ever leave INSUFFICIENT_DATA.",
        validate=_alarm_metrics_published, enforcement_level=MANDATORY),
    ResourceValidationPolicy(
        name="protected-tables-recoverable",
        description="A DynamoDB table the stack protects (Pulumi protect) also has point-in-time recovery and "
                    "DynamoDB deletion protection.",
        validate=_protected_tables_recoverable, enforcement_level=MANDATORY),
]
