"""`iceprobe exporter` (issue 18): a Prometheus exporter in the style of blackbox_exporter.
`plan` turns a /probe request into a probe, `metrics` turns its Report into metrics,
`history` keeps recent probes for the / page, and `app` is the aiohttp application."""
