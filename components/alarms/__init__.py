"""Alarms, alarm topic and dashboard; one module per AWS service plus ``defaults``."""
from .monitoring import Monitoring, MonitoringArgs

__all__ = ["Monitoring", "MonitoringArgs"]
