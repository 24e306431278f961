"""Simulated IoT device fleet: load, bad input and an end-to-end integrity check for the ingest API."""
