"""aiassistant-operator: the kopf controller that turns AIAssistant resources into runner workloads."""

__version__ = "0.1.0"
