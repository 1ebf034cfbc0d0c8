"""Use cases on what pipelines report: deployments, builds, releases, lifecycle steps,
output logs, retention, and the dialects (Retrace) mapped onto them."""
