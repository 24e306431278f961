"""The encrypted SNS topic every alarm notifies.

CloudWatch alarms cannot publish to a topic encrypted with the AWS managed key
alias/aws/sns: its key policy does not let cloudwatch.amazonaws.com use the key
and cannot be edited. So the topic gets its own customer managed key whose
policy grants CloudWatch kms:Decrypt and kms:GenerateDataKey*.
https://repost.aws/knowledge-center/cloudwatch-configure-alarm-sns
https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html
"""
from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from ..arns import arn_account, arn_partition


def key_policy(any_arn_in_account: str) -> str:
    """Default account-root statement plus CloudWatch's use of the key."""
    partition, account = arn_partition(any_arn_in_account), arn_account(any_arn_in_account)
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {   # The KMS default key policy: IAM in this account governs the key.
                # https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html
                "Sid": "AccountAdministers",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{partition}:iam::{account}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "CloudWatchAlarmsPublish",
                "Effect": "Allow",
                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                "Resource": "*",
            },
        ],
    })


def alarm_topic(parent: pulumi.Resource, name: str, any_arn_in_account: pulumi.Input[str],
                email: str | None) -> tuple[aws.kms.Key, aws.sns.Topic, aws.sns.TopicSubscription | None]:
    """Key, topic and (when an address is configured) an email subscription.

    ``any_arn_in_account`` supplies account and partition for the key policy
    without an extra getCallerIdentity call.
    """
    child = pulumi.ResourceOptions(parent=parent)
    key = aws.kms.Key(
        f"{name}-alarm-key",
        description="Encrypts the iot-ingest alarm topic; usable by CloudWatch alarms",
        enable_key_rotation=True,
        deletion_window_in_days=7,
        policy=pulumi.Output.from_input(any_arn_in_account).apply(key_policy),
        opts=child,
    )
    topic = aws.sns.Topic(f"{name}-alarms", kms_master_key_id=key.arn, opts=child)
    subscription = None
    if email:
        subscription = aws.sns.TopicSubscription(
            f"{name}-alarm-email", topic=topic.arn, protocol="email", endpoint=email, opts=child,
        )
    return key, topic, subscription
