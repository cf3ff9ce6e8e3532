"""stagegraph: a Nebari-compatible data platform deployed as an incremental graph of Terraform stages."""

__version__ = "0.1.0"
