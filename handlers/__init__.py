"""Lets tools import the shared package as ``handlers.telemetry``.

On Lambda this directory *is* the archive root: the runtime imports
``ingest``/``authorizer``/``processor`` as top-level modules and never
imports this file, so it changes nothing about the deployed layout.
"""
