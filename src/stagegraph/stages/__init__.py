"""The built-in stages: each a `Stage` record plus a pure render function."""
