"""stagegraph-hello: an example plugin that adds the stage 045-hello and `doit hello`."""

__version__ = "0.1.0"
