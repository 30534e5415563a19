"""Prompts: ids, immutable numbered versions and labels; Jinja messages rendered in a sandbox.

`models` is the format of a version, `sandbox` the Jinja environment and its bounds, `compiled`
one version ready to render (templates compiled once, input validated), `catalog` where versions
come from (a module's manifest config, the Redis store), `resolve` what an endpoint calls.
Nothing here is imported by `import fd2`.
"""
