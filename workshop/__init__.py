"""The course on a JupyterHub for workshops: configuration, spawner, client and load test (workshop/README.md)."""
