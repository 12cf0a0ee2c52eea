"""Talking to an OpenAI-compatible gateway: HTTP, Server-Sent Events, the endpoint dialects, replies and usage."""
