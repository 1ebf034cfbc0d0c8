"""The CI side: `relay deploy` and `relay build` commands that report from a pipeline.

Nothing here imports the server (store, aiohttp server, app): the commands must start
quickly and work anywhere the `relay` package is installed."""
