"""Upgrading a deployment: the version gate, config migrations, and the deploy actions they leave.

`versions` decides whether a config's `nebari_version` is the format this release reads;
`steps` holds one small migration per Nebari release; `run` applies them to a file
(comment-preserving, with a backup and a diff); `deploy_actions` records the steps that
must touch the live cluster, which the stage graph runs before or after a stage applies.
"""
