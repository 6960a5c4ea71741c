#!/bin/bash
# Runs once, on the first start of the influxdb container, right after the image's own setup
# from DOCKER_INFLUXDB_INIT_* (org, bucket, admin token). It makes the bucket usable through
# the v1-compatible API (InfluxQL), which the twin server and Grafana both use:
#  - a DBRP mapping: database "$TWIN_INFLUX_DB", retention policy "autogen" -> the bucket;
#  - a read-only v1 user for Grafana, so the dashboard never holds a write-capable secret.
set -euo pipefail

influx v1 dbrp create \
  --org "${DOCKER_INFLUXDB_INIT_ORG}" \
  --bucket-id "${DOCKER_INFLUXDB_INIT_BUCKET_ID}" \
  --db "${TWIN_INFLUX_DB}" \
  --rp autogen \
  --default

influx v1 auth create \
  --org "${DOCKER_INFLUXDB_INIT_ORG}" \
  --username "${GRAFANA_INFLUX_USER}" \
  --password "${GRAFANA_INFLUX_PASSWORD}" \
  --read-bucket "${DOCKER_INFLUXDB_INIT_BUCKET_ID}"
