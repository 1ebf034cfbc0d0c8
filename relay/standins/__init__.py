"""Local stand-ins for the target services: strict, recording HTTP receivers.

Each module builds an aiohttp app that validates requests as the real service
does (see TARGETS.md) and records what it accepted. Tests and `relay demo` use
them; nothing here runs in production.
"""
