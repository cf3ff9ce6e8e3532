"""The cloud providers (aws, gcp, azure): state stores, clusters and their add-ons.

Each module is pure render code called by the built-in stages 01-04 when the config's
provider is a cloud; nothing here asks a cloud API anything.
"""
