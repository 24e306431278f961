"""HTTP APIs (API Gateway v2): API, stage, authorizer, integration, route.

moto stores the configuration but serves nothing; the data plane's gateway
serves what these resources describe.  The API's ``apiEndpoint`` is the
gateway's URL, chosen before provisioning, so the program's ``apiUrl`` output
is directly usable.
"""
from __future__ import annotations

from typing import Any

from .base import Context, ProvisionError, Request, as_bool, as_int, drop_none, physical_name


def _require(req: Request, *keys: str) -> None:
    for key in keys:
        if not req.inputs.get(key):
            raise ProvisionError(f"{req.type.rsplit(':', 1)[-1].lower()} {req.name!r}: {key} is required")


def _cors(raw: dict[str, Any] | None) -> dict[str, Any] | None:
    if not raw:
        return None
    return drop_none({
        "AllowCredentials": raw.get("allowCredentials"),
        "AllowHeaders": raw.get("allowHeaders"),
        "AllowMethods": raw.get("allowMethods"),
        "AllowOrigins": raw.get("allowOrigins"),
        "ExposeHeaders": raw.get("exposeHeaders"),
        "MaxAge": as_int(raw.get("maxAge")),
    })


def create_api(ctx: Context, req: Request) -> tuple[str, dict[str, Any]]:
    i = req.inputs
    protocol = i.get("protocolType") or ""
    if protocol != "HTTP":
        raise ProvisionError(f"api {req.name!r}: only protocolType HTTP is served locally, got {protocol!r}")
    name = physical_name(req, max_len=128)
    args: dict[str, Any] = drop_none({
        "Name": name,
        "ProtocolType": protocol,
        "Description": i.get("description"),
        "CorsConfiguration": _cors(i.get("corsConfiguration")),
        "DisableExecuteApiEndpoint": i.get("disableExecuteApiEndpoint"),
        "RouteSelectionExpression": i.get("routeSelectionExpression"),
    })
    tags = ctx.tags(req)
    if tags:
        args["Tags"] = tags
    api = ctx.client("apigatewayv2").create_api(**args)
    api_id = api["ApiId"]
    state = {
        **i,
        "name": name,
        "apiEndpoint": ctx.api_url,
        "arn": f"arn:aws:apigateway:{ctx.region}::/apis/{api_id}",
        "executionArn": ctx.arn("execute-api", api_id),
        "tagsAll": tags,
    }
    return api_id, state


def _route_settings(raw: dict[str, Any] | None) -> dict[str, Any] | None:
    if not raw:
        return None
    return drop_none({
        "DetailedMetricsEnabled": raw.get("detailedMetricsEnabled"),
        "ThrottlingBurstLimit": as_int(raw.get("throttlingBurstLimit")),
        "ThrottlingRateLimit": float(raw["throttlingRateLimit"]) if raw.get("throttlingRateLimit") is not None else None,
    })


def create_stage(ctx: Context, req: Request) -> tuple[str, dict[str, Any]]:
    _require(req, "apiId")
    i = req.inputs
    name = physical_name(req, max_len=128)
    access = i.get("accessLogSettings") or {}
    args: dict[str, Any] = drop_none({
        "ApiId": i["apiId"],
        "StageName": name,
        "AutoDeploy": i.get("autoDeploy"),
        "Description": i.get("description"),
        "DefaultRouteSettings": _route_settings(i.get("defaultRouteSettings")),
        "StageVariables": i.get("stageVariables") or None,
        "AccessLogSettings": (
            {"DestinationArn": access["destinationArn"], "Format": access.get("format", "")}
            if access.get("destinationArn") else None
        ),
    })
    if i.get("routeSettings"):
        args["RouteSettings"] = {
            r["routeKey"]: _route_settings(r) for r in i["routeSettings"] if r.get("routeKey")
        }
    tags = ctx.tags(req)
    if tags:
        args["Tags"] = tags
    ctx.client("apigatewayv2").create_stage(**args)
    invoke_url = ctx.api_url if name == "$default" else f"{ctx.api_url}/{name}"
    execution_arn = ctx.arn("execute-api", f"{i['apiId']}/{name}")
    return name, {**i, "name": name, "invokeUrl": invoke_url, "executionArn": execution_arn,
                  "arn": f"arn:aws:apigateway:{ctx.region}::/apis/{i['apiId']}/stages/{name}", "tagsAll": tags}


def create_authorizer(ctx: Context, req: Request) -> tuple[str, dict[str, Any]]:
    _require(req, "apiId", "authorizerType")
    i = req.inputs
    if i["authorizerType"] != "REQUEST":
        raise ProvisionError(
            f"authorizer {req.name!r}: only REQUEST (Lambda) authorizers are served locally, got {i['authorizerType']!r}"
        )
    _require(req, "authorizerUri")
    name = physical_name(req, max_len=128)
    args: dict[str, Any] = drop_none({
        "ApiId": i["apiId"],
        "Name": name,
        "AuthorizerType": "REQUEST",
        "AuthorizerUri": i["authorizerUri"],
        "AuthorizerPayloadFormatVersion": i.get("authorizerPayloadFormatVersion"),
        "EnableSimpleResponses": i.get("enableSimpleResponses"),
        "IdentitySource": list(i.get("identitySources") or []),
        "AuthorizerResultTtlInSeconds": as_int(i.get("authorizerResultTtlInSeconds")),
        "AuthorizerCredentialsArn": i.get("authorizerCredentialsArn"),
    })
    authorizer = ctx.client("apigatewayv2").create_authorizer(**args)
    # pulumi-aws defaults the cache TTL to 300 s when it is not given for a Lambda authorizer.
    ttl = as_int(i.get("authorizerResultTtlInSeconds"), 300)
    return authorizer["AuthorizerId"], {**i, "name": name, "authorizerResultTtlInSeconds": ttl}


def create_integration(ctx: Context, req: Request) -> tuple[str, dict[str, Any]]:
    _require(req, "apiId", "integrationType")
    i = req.inputs
    if i["integrationType"] != "AWS_PROXY" or ":lambda:" not in str(i.get("integrationUri", "")):
        raise ProvisionError(
            f"integration {req.name!r}: only AWS_PROXY Lambda integrations are served locally "
            f"(got {i['integrationType']!r} -> {i.get('integrationUri')!r})"
        )
    args: dict[str, Any] = drop_none({
        "ApiId": i["apiId"],
        "IntegrationType": "AWS_PROXY",
        "IntegrationMethod": i.get("integrationMethod") or "POST",
        "IntegrationUri": i["integrationUri"],
        "PayloadFormatVersion": i.get("payloadFormatVersion") or "1.0",
        "TimeoutInMillis": as_int(i.get("timeoutMilliseconds")),
        "Description": i.get("description"),
    })
    integration = ctx.client("apigatewayv2").create_integration(**args)
    return integration["IntegrationId"], {
        **i,
        "payloadFormatVersion": args["PayloadFormatVersion"],
        # HTTP APIs default and cap the integration timeout at 30 s:
        # https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html
        "timeoutMilliseconds": as_int(i.get("timeoutMilliseconds"), 30000),
        "integrationResponseSelectionExpression": "",
    }


def create_route(ctx: Context, req: Request) -> tuple[str, dict[str, Any]]:
    _require(req, "apiId", "routeKey")
    i = req.inputs
    target = i.get("target") or ""
    if not str(target).startswith("integrations/"):
        raise ProvisionError(f"route {req.name!r} ({i['routeKey']}): target must be 'integrations/<id>', got {target!r}")
    authorization = i.get("authorizationType") or "NONE"
    if authorization not in ("NONE", "CUSTOM"):
        raise ProvisionError(
            f"route {req.name!r}: authorizationType {authorization!r} is not served locally (NONE or CUSTOM)"
        )
    if authorization == "CUSTOM" and not i.get("authorizerId"):
        raise ProvisionError(f"route {req.name!r}: authorizationType CUSTOM needs authorizerId")
    args: dict[str, Any] = drop_none({
        "ApiId": i["apiId"],
        "RouteKey": i["routeKey"],
        "Target": target,
        "AuthorizationType": authorization,
        "AuthorizerId": i.get("authorizerId") if authorization == "CUSTOM" else None,
        "ApiKeyRequired": as_bool(i.get("apiKeyRequired")) if i.get("apiKeyRequired") is not None else None,
    })
    route = ctx.client("apigatewayv2").create_route(**args)
    return route["RouteId"], {**i, "authorizationType": authorization}


CREATORS = {
    "aws:apigatewayv2/api:Api": create_api,
    "aws:apigatewayv2/stage:Stage": create_stage,
    "aws:apigatewayv2/authorizer:Authorizer": create_authorizer,
    "aws:apigatewayv2/integration:Integration": create_integration,
    "aws:apigatewayv2/route:Route": create_route,
}
