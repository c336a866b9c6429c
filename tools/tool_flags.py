"""Flag parsing shared by the `tools/` scripts: `--help` and clean errors.

Each tool keeps its flags in its own `flags.FlagValues()` (so importing a
tool in a test or another tool never touches absl's global flags) and calls
`parse_flags` first thing in its `main`:

```python
from absl import flags
from tools.tool_flags import parse_flags

FLAGS = flags.FlagValues()
flags.DEFINE_integer("steps", 3, "How many.", flag_values=FLAGS)
assert parse_flags(FLAGS, ["prog", "--steps=5"], "A tool.") is None
assert FLAGS.steps == 5
assert parse_flags(FLAGS, ["prog", "--stepz=5"], "A tool.") == 2
```
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

from absl import flags


def parse_flags(
    flag_values: flags.FlagValues,
    argv: list[str],
    doc: str | None,
    required: Sequence[str] = (),
) -> int | None:
    """Parses `argv` (program name first) into `flag_values`.

    Returns None when the tool should go on; otherwise the exit code: 0 after
    printing `doc` and the flags for `--help` / `-h`, 2 after printing what
    was wrong with the command line (including a `required` flag left empty).
    """
    if any(arg in ("--help", "-h", "--helpfull") for arg in argv[1:]):
        print((doc or "").strip() + "\n\nflags:\n" + flag_values.get_help())
        return 0
    flag_values.unparse_flags()
    try:
        flag_values(argv)
    except flags.Error as e:
        print(f"error: {e} (see --help)", file=sys.stderr)
        return 2
    for name in required:
        if not flag_values[name].value:
            print(f"error: --{name} is required (see --help).", file=sys.stderr)
            return 2
    return None


def run_and_report(
    run: Callable[[], Any],
    describe: Callable[[Any], str],
    imports_tensorflow: bool = True,
) -> int:
    """Calls `run()` and prints `describe(result)`: exit code 0; a bad path
    or value (FileNotFoundError, ValueError) is printed as one line: 1.

    With `imports_tensorflow` (the converters' runs write TFRecords), and
    TensorFlow not yet imported, it is imported first under
    `official.core.quiet_start` (no CUDA-absence lines on a CPU-only host);
    `--help` and flag errors, answered before, never import it.
    """
    if imports_tensorflow and "tensorflow" not in sys.modules:
        from official.core.quiet_start import import_tensorflow_quietly

        import_tensorflow_quietly()
    try:
        result = run()
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(describe(result))
    return 0
