"""PII redaction: policies, the redactor over text and JSON, and the SSE stream redactor. The
native scanner is `fd2._native.PiiScanner`; the step is `fd2.pipeline.redaction`
(docs/privacy.md)."""
