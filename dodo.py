"""stagegraph's doit entry point: `doit list` for the stages, `doit deploy` to apply them.

Pick another config with `doit config=path/to/nebari-config.yaml <command>` (or the
STAGEGRAPH_CONFIG environment variable), an environment with `doit env=dev <command>`
(nebari-config.dev.yaml, deployed into dev/). Everything lives in the `stagegraph`
package; this file only hands doit its settings and tasks.
"""

from pathlib import Path

from stagegraph.tasks import dodo_namespace

globals().update(dodo_namespace(Path(__file__).resolve().parent))
