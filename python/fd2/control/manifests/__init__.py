"""Manifests in both formats (Control Tower project, single module), decoded with msgspec."""
