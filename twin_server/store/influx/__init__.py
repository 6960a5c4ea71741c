"""InfluxDB export for integrators: pure line protocol and a durable background writer."""
