"""Other APIs the inference module serves on top of its OpenAI chat path (`ChatService`):
Anthropic's Messages API at `/v1/messages` (messages.py)."""
