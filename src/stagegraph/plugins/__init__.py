"""Plugins: pluggy hook specs, the plugin manager, custom-stage adapters and plugin tasks."""
