"""The live feed: one broker fanning stored events out to SSE and WebSocket readers."""
