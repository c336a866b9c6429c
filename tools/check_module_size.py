"""Fails when a Python module of the project passes the hard size limit.

STYLE.md's R12: the soft limit is 400 lines (listed, not fatal) and the hard
limit is 800 (exit status 1). `make test` runs it before the tests:

    python tools/check_module_size.py [--max_lines=800] [--soft_lines=400] [ROOT]
"""

from __future__ import annotations

import argparse
import pathlib
import sys

PACKAGES = ("official", "serving", "tools", "tests")


def module_sizes(root: pathlib.Path) -> list[tuple[int, str]]:
    """(lines, path relative to root) of every module, largest first."""
    sizes = []
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            with path.open(encoding="utf-8") as f:
                lines = sum(1 for _ in f)
            sizes.append((lines, str(path.relative_to(root))))
    return sorted(sizes, reverse=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default=".")
    parser.add_argument("--max_lines", type=int, default=800)
    parser.add_argument("--soft_lines", type=int, default=400)
    args = parser.parse_args(argv)
    sizes = module_sizes(pathlib.Path(args.root))
    over = [(n, p) for n, p in sizes if n > args.max_lines]
    soft = [(n, p) for n, p in sizes if args.soft_lines < n <= args.max_lines]
    for n, p in soft:
        print(f"note: {p} has {n} lines (soft limit {args.soft_lines})")
    for n, p in over:
        print(f"error: {p} has {n} lines; split it (limit {args.max_lines})")
    print(f"{len(sizes)} modules checked, {len(over)} over {args.max_lines} lines")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
