"""Optional bridges from rowloom's event streams to other systems (`otel`: OpenTelemetry)."""
