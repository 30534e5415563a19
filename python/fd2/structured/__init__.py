"""Structured output: answers that must match a JSON Schema, validated, repaired by bounded
re-asks (`validator`, `reask`)."""
