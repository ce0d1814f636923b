"""FHIR R4 health-data server for Russian healthcare."""

__version__ = "0.1.0"
