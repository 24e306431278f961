"""A least-privilege Lambda function with its own role and log group."""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from settings import FunctionSettings

from .arns import with_children

RUNTIME = "python3.12"
ARCHITECTURE = "arm64"
METRICS_NAMESPACE = "IotIngest"
# X-Ray's PutTraceSegments/PutTelemetryRecords have no resource types, so the
# Resource element must be "*" (the only wildcard this project grants):
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsx-ray.html
# and the AWSXRayDaemonWriteAccess policy used by Lambda active tracing:
# https://docs.aws.amazon.com/lambda/latest/dg/services-xray.html
XRAY_ACTIONS = ("xray:PutTraceSegments", "xray:PutTelemetryRecords")
LOG_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents")


@dataclass(frozen=True)
class PolicyStatement:
    """One Allow statement: exact actions on exact resources (Outputs are fine)."""

    actions: tuple[str, ...]
    resources: Sequence[pulumi.Input[str]]


@dataclass(frozen=True)
class LambdaFunctionArgs:
    role: str  # "authorizer" | "ingest" | "processor": POWERTOOLS_SERVICE_NAME
    function_name: str  # physical name; fixed so the log group can exist first
    handler: str
    code: pulumi.Archive
    settings: FunctionSettings
    layers: Sequence[str]
    log_retention_days: int
    log_level: str
    environment: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    statements: Sequence[PolicyStatement] = ()


def policy_document(statements: Sequence[PolicyStatement]) -> pulumi.Output[str]:
    """Render statements as an IAM policy JSON once every resource ARN is known."""
    flat: list[pulumi.Input[str]] = [r for s in statements for r in s.resources]

    def render(resolved: list[str]) -> str:
        out = []
        i = 0
        for s in statements:
            n = len(s.resources)
            out.append({"Effect": "Allow", "Action": list(s.actions), "Resource": resolved[i:i + n]})
            i += n
        return json.dumps({"Version": "2012-10-17", "Statement": out})

    return pulumi.Output.all(*flat).apply(render)


def assume_role_policy(service: str) -> str:
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
    })


class LambdaFunction(pulumi.ComponentResource):
    """Role + inline policy + log group (created first) + function.

    The log group is declared by us, with finite retention, before the
    function exists - otherwise Lambda creates it on first invoke with
    infinite retention and the stack never owns it.
    """

    name: pulumi.Output[str]
    arn: pulumi.Output[str]
    invoke_arn: pulumi.Output[str]

    def __init__(self, name: str, args: LambdaFunctionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("iot-ingest:function:LambdaFunction", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/aws/lambda/{args.function_name}",
            retention_in_days=args.log_retention_days,
            opts=child,
        )
        self.role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=assume_role_policy("lambda.amazonaws.com"),
            description=f"Execution role of {args.function_name}",
            opts=child,
        )
        self.statements: tuple[PolicyStatement, ...] = (
            *args.statements,
            PolicyStatement(LOG_ACTIONS, [self.log_group.arn.apply(with_children)]),
            PolicyStatement(XRAY_ACTIONS, ["*"]),
        )
        self.role_policy = aws.iam.RolePolicy(
            f"{name}-policy",
            role=self.role.id,
            policy=policy_document(self.statements),
            opts=child,
        )
        s = args.settings
        variables: dict[str, pulumi.Input[str]] = {
            "POWERTOOLS_SERVICE_NAME": args.role,
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            "LOG_LEVEL": args.log_level,
            **args.environment,
        }
        self.function = aws.lambda_.Function(
            f"{name}-function",
            name=args.function_name,
            role=self.role.arn,
            runtime=RUNTIME,
            architectures=[ARCHITECTURE],
            handler=args.handler,
            code=args.code,
            memory_size=s.memory_mb,
            timeout=s.timeout_s,
            reserved_concurrent_executions=s.reserved_concurrency,
            tracing_config=aws.lambda_.FunctionTracingConfigArgs(mode="Active"),
            layers=list(args.layers),
            environment=aws.lambda_.FunctionEnvironmentArgs(variables=variables),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.log_group, self.role_policy]),
        )
        self.name = self.function.name
        self.arn = self.function.arn
        self.invoke_arn = self.function.invoke_arn
        self.register_outputs({"name": self.name, "arn": self.arn, "roleArn": self.role.arn})
