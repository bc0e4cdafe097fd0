"""``bertdistill cache list|clear``: the teacher outputs cached on disk by ``distill``.

Each entry is a folder named by a content hash (teacher weights and configuration, token
ids, feature keys) holding ``features.safetensors`` and ``meta.json``. Only such folders (and
the partial folders of killed builds) are listed or removed, so a wrong ``--cache-dir`` cannot
wipe unrelated files. ``list`` checks every entry as a run would (size and checksum against
its meta) and says ``ok``, ``damaged: <reason>`` (a run rebuilds such an entry) or
``partial`` for each.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from .options import CACHE_HELP, HelpFormatter


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("cache", help=f"list or clear the teacher-output cache ({CACHE_HELP})",
                              description=f"The teacher-output cache of `distill` (default location: {CACHE_HELP}).",
                              formatter_class=HelpFormatter)
    p.add_argument("action", choices=["list", "clear"], help="list the entries with their sizes, or remove them all")
    p.add_argument("--cache-dir", default=None,
                   help=f"the cache folder, as given to `distill --cache-dir` (default: {CACHE_HELP})")
    p.set_defaults(handler=run)


def cache_root(cache_dir: str | None) -> Path:
    if cache_dir:
        return Path(cache_dir).expanduser()
    from ..distill.cache import default_cache_dir

    return default_cache_dir()


def entries(root: Path) -> list[Path]:
    """The cache entries under ``root`` (complete ones and partial leftovers)."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and (
        (p / "features.safetensors").is_file() or (p / "meta.json").is_file() or is_partial(p)))


def is_partial(path: Path) -> bool:
    """A folder a build was writing when it stopped (``.<key>.partial-<host>-<pid>``; older
    versions named it ``.<key>.partial``)."""
    return path.name.startswith(".") and (path.name.endswith(".partial") or ".partial-" in path.name)


def describe_entry(path: Path) -> tuple[str, str]:
    """``(what it holds, status)`` of one entry, never raising for a damaged one."""
    from ..distill.cache_files import check_entry, read_meta

    if is_partial(path):
        return "", "partial (a build that did not finish)"
    try:
        meta = read_meta(path)
    except ValueError as err:
        return "", f"damaged: {err}"
    keys = meta.get("keys") if isinstance(meta.get("keys"), list) else []
    what = f"{meta.get('examples', '?')} examples, keys {','.join(map(str, keys))}"
    damage = check_entry(path)
    return what, "ok" if damage is None else f"damaged: {damage}"


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def run(args: argparse.Namespace) -> dict:
    root = cache_root(args.cache_dir)
    if root.exists() and not root.is_dir():
        raise ValueError(f"--cache-dir {root} is a file, not a cache folder")
    found = entries(root)
    total = sum(_size(p) for p in found)
    if args.action == "list":
        print(f"teacher cache: {root} ({len(found)} entries, {total / 1e6:.1f} MB)")
        statuses = {}
        for p in found:
            what, status = describe_entry(p)
            statuses[str(p)] = status
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(p.stat().st_mtime))
            print(f"  {p.name:<24} {_size(p) / 1e6:>9.1f} MB  {when}  {status}" + (f"  ({what})" if what else ""))
        damaged = sum(s.startswith("damaged") for s in statuses.values())
        if damaged:
            print(f"{damaged} damaged entr{'y' if damaged == 1 else 'ies'}: the next run that needs "
                  f"{'it' if damaged == 1 else 'them'} rebuilds {'it' if damaged == 1 else 'them'} "
                  "(or remove all with `bertdistill cache clear`)")
        return {"root": str(root), "entries": [str(p) for p in found], "bytes": total, "status": statuses}
    for p in found:
        shutil.rmtree(p)
    print(f"teacher cache: removed {len(found)} entries ({total / 1e6:.1f} MB) from {root}")
    return {"root": str(root), "removed": len(found), "bytes": total}
