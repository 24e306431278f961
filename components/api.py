"""The device-facing HTTP API: authorizer, routes, throttling, access logs."""
from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from settings import ApiSettings

from .function import LambdaFunction

TELEMETRY_ROUTE = "POST /v1/telemetry"
HEALTH_ROUTE = "GET /health"
IDENTITY_SOURCES = ("$request.header.x-device-id", "$request.header.x-device-key")
# HTTP APIs cap integrations at 30 s and the cap cannot be raised:
# https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html
INTEGRATION_TIMEOUT_MS = 30_000
# $context variables valid for HTTP API access logs:
# https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-logging-variables.html
ACCESS_LOG_FORMAT = json.dumps({
    "requestId": "$context.requestId",
    "sourceIp": "$context.identity.sourceIp",
    "requestTime": "$context.requestTime",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationLatency": "$context.integrationLatency",
    "integrationStatus": "$context.integrationStatus",
    "integrationErrorMessage": "$context.integrationErrorMessage",
    "authorizerError": "$context.authorizer.error",
}, separators=(",", ":"))


@dataclass(frozen=True)
class IngestApiArgs:
    settings: ApiSettings
    ingest: LambdaFunction
    authorizer: LambdaFunction
    access_log_group_name: str
    log_retention_days: int


class IngestApi(pulumi.ComponentResource):
    """HTTP API with a Lambda REQUEST authorizer in front of the ingest function."""

    api_id: pulumi.Output[str]
    url: pulumi.Output[str]

    def __init__(self, name: str, args: IngestApiArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("iot-ingest:api:IngestApi", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        s = args.settings
        cors = None
        if s.cors_allow_origins:
            cors = aws.apigatewayv2.ApiCorsConfigurationArgs(
                allow_origins=list(s.cors_allow_origins),
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=["content-type", "x-device-id", "x-device-key"],
                max_age=300,
            )
        self.api = aws.apigatewayv2.Api(
            f"{name}-http", protocol_type="HTTP", cors_configuration=cors,
            description="iot-ingest device telemetry API", opts=child,
        )
        self.access_logs = aws.cloudwatch.LogGroup(
            f"{name}-access-logs", name=args.access_log_group_name,
            retention_in_days=args.log_retention_days, opts=child,
        )
        # Both limits, always: a route-settings block with only one of them makes
        # the other 0, and every request gets 429 (pulumi/pulumi-aws#2363).
        # https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-throttling.html
        self.stage = aws.apigatewayv2.Stage(
            f"{name}-stage",
            api_id=self.api.id,
            name="$default",
            auto_deploy=True,
            default_route_settings=aws.apigatewayv2.StageDefaultRouteSettingsArgs(
                throttling_burst_limit=s.throttle_burst,
                throttling_rate_limit=s.throttle_rate,
            ),
            access_log_settings=aws.apigatewayv2.StageAccessLogSettingsArgs(
                destination_arn=self.access_logs.arn, format=ACCESS_LOG_FORMAT,
            ),
            opts=child,
        )
        # https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-lambda-authorizer.html
        self.authorizer = aws.apigatewayv2.Authorizer(
            f"{name}-authorizer",
            api_id=self.api.id,
            name=f"{name}-device-key",
            authorizer_type="REQUEST",
            authorizer_uri=args.authorizer.invoke_arn,
            authorizer_payload_format_version="2.0",
            enable_simple_responses=True,
            identity_sources=list(IDENTITY_SOURCES),
            authorizer_result_ttl_in_seconds=s.authorizer_cache_ttl_s,
            opts=child,
        )
        self.integration = aws.apigatewayv2.Integration(
            f"{name}-ingest-integration",
            api_id=self.api.id,
            integration_type="AWS_PROXY",
            integration_method="POST",
            integration_uri=args.ingest.invoke_arn,
            payload_format_version="2.0",
            timeout_milliseconds=INTEGRATION_TIMEOUT_MS,
            opts=child,
        )
        target = self.integration.id.apply(lambda i: f"integrations/{i}")
        self.telemetry_route = aws.apigatewayv2.Route(
            f"{name}-telemetry-route", api_id=self.api.id, route_key=TELEMETRY_ROUTE,
            authorization_type="CUSTOM", authorizer_id=self.authorizer.id, target=target, opts=child,
        )
        self.health_route = aws.apigatewayv2.Route(
            f"{name}-health-route", api_id=self.api.id, route_key=HEALTH_ROUTE,
            authorization_type="NONE", target=target, opts=child,
        )
        # Resource policies scoped to this API only.
        # https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-lambda-authorizer.html
        self.ingest_permission = aws.lambda_.Permission(
            f"{name}-ingest-permission",
            action="lambda:InvokeFunction",
            function=args.ingest.name,
            principal="apigateway.amazonaws.com",
            source_arn=self.api.execution_arn.apply(lambda a: f"{a}/*/*"),
            opts=child,
        )
        self.authorizer_permission = aws.lambda_.Permission(
            f"{name}-authorizer-permission",
            action="lambda:InvokeFunction",
            function=args.authorizer.name,
            principal="apigateway.amazonaws.com",
            source_arn=pulumi.Output.all(self.api.execution_arn, self.authorizer.id).apply(
                lambda a: f"{a[0]}/authorizers/{a[1]}"),
            opts=child,
        )
        self.api_id = self.api.id
        # For the $default stage the invoke URL is the API endpoint itself; tie it
        # to the stage so the URL is only published once the stage exists.
        self.url = pulumi.Output.all(self.api.api_endpoint, self.stage.id).apply(lambda a: a[0].rstrip("/"))
        self.register_outputs({"apiId": self.api_id, "url": self.url})
