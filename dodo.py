"""stagegraph's doit entry point: `doit list` for the stages, `doit deploy` to apply them.

Pick another config with `doit config=path/to/nebari-config.yaml <command>` or the
STAGEGRAPH_CONFIG environment variable. Everything lives in the `stagegraph` package;
this file only hands doit its tasks.
"""

from pathlib import Path

from stagegraph.doitconfig import DOIT_CONFIG  # noqa: F401  (read by doit)
from stagegraph.tasks import make_task_creators, session_from_doit

globals().update(make_task_creators(session_from_doit(Path(__file__).resolve().parent)))
