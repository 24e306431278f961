"""Pulumi ComponentResources for the ingest pipeline, one concern per module."""
