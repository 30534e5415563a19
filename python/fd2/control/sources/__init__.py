"""Where manifests come from: a local directory (the embedded default) and the Control Tower."""
