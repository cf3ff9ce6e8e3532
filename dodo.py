"""stagegraph's doit entry point: `doit list` for the stages, `doit deploy` to apply them.

Pick another config with `doit config=path/to/nebari-config.yaml <command>` (or the
STAGEGRAPH_CONFIG environment variable), an environment with `doit env=dev <command>`
(nebari-config.dev.yaml, deployed into dev/). Everything lives in the `stagegraph`
package; this file only hands doit its settings and tasks.
"""

from stagegraph.signals import install_early

install_early()  # first: a Ctrl-C while the imports below load is one line, not a traceback

from pathlib import Path  # noqa: E402

from stagegraph.tasks import dodo_namespace  # noqa: E402

globals().update(dodo_namespace(Path(__file__).resolve().parent))
