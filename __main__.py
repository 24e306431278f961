"""iot-ingest: load settings, compose the pipeline, export the stack outputs.

Nothing here knows whether it runs against AWS or the local cloud.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pulumi
import pulumi_aws as aws

PROJECT_DIR = Path(__file__).resolve().parent
if str(PROJECT_DIR) not in sys.path:  # runnable from any cwd (tools use runpy.run_path)
    sys.path.insert(0, str(PROJECT_DIR))

from components.pipeline import IngestPipeline, PipelineArgs  # noqa: E402 - needs the sys.path entry above
from settings import load_settings  # noqa: E402 - needs the sys.path entry above

settings = load_settings()  # raises SettingsError before any resource is declared
stack = pulumi.get_stack()

provider = aws.Provider(
    "aws",
    region=settings.region,
    default_tags=aws.ProviderDefaultTagsArgs(tags={"project": "iot-ingest", "stack": stack}),
)
pipeline = IngestPipeline(
    "iot-ingest",
    PipelineArgs(settings=settings, code_dir=PROJECT_DIR / "handlers", stack=stack),
    opts=pulumi.ResourceOptions(providers=[provider]),
)

for key, value in pipeline.outputs.items():
    pulumi.export(key, value)
