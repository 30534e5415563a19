"""OpenAI's Responses API (`POST /v1/responses`) on every inference module, over its chat path.

A Responses request is translated to an OpenAI chat body (`request.py`), run through the
module's `ChatService` whichever provider serves it, and the answer or each stream chunk is
translated back (`answer.py`, `events.py`). Responses are kept for `previous_response_id`
(`store.py`: Redis with a TTL, else this worker's memory); `prompt: {id, version, variables}`
renders a stored prompt version (`fd2.prompts`).
"""
