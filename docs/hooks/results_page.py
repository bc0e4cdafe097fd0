"""MkDocs hook: benchmarks/RESULTS.md becomes a page of the site, and repository links work.

The guide's pages are written for the repository, so they read the same on a code host
and in the site: they link to the measurements as ``../benchmarks/RESULTS.md#<section>``.
This hook

* adds benchmarks/RESULTS.md, read from the repository at build time (nothing is copied
  into docs/), as the site page ``benchmarks/RESULTS.md``;
* points every link to that file, from the guide or from RESULTS.md itself, at that page,
  and links from RESULTS.md into docs/ at the same pages of the site, so the strict build
  checks each of them, anchors included;
* shows a link to another file of the repository (a script, a JSON file) as its path, in
  code, since the site does not hold it;
* leaves a link to a file that does not exist as it is, so the strict build fails on it.
"""

from __future__ import annotations

import os
import posixpath
import re
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(os.path.normpath(os.path.abspath(__file__))).parents[2]
SOURCE = ROOT / "benchmarks" / "RESULTS.md"
SITE_PATH = "benchmarks/RESULTS.md"
LINK = re.compile(r"(?<!!)\[([^\]\n]+)\]\(([^)\s]+)\)")
URL = re.compile(r"^[a-z][a-z0-9+.-]*:")


def on_files(files, config):
    files.append(File.generated(config, SITE_PATH, abs_src_path=str(SOURCE)))
    return files


def site_link(text: str, target: str, source_dir: Path, site_dir: str, docs_dir: Path) -> str:
    """``[text](target)``, written in the repository folder ``source_dir``, as the page in
    the site folder ``site_dir`` must read it."""
    if URL.match(target) or target.startswith("#"):
        return f"[{text}]({target})"  # a URL, or an anchor of the same page
    path, _, anchor = target.partition("#")
    resolved = Path(os.path.normpath(source_dir / path))  # symbolic links are not followed
    if resolved == SOURCE:
        in_site = SITE_PATH
    elif resolved.exists():
        try:
            in_site = resolved.relative_to(docs_dir).as_posix()
        except ValueError:  # a repository file the site does not hold
            shown = resolved.relative_to(ROOT).as_posix()
            return text if text.strip("`") == shown else f"{text} (`{shown}`)"
    else:
        return f"[{text}]({target})"  # broken: the strict build reports it
    new = posixpath.relpath(in_site, site_dir or ".")
    return f"[{text}]({new}{'#' + anchor if anchor else ''})"


def on_page_markdown(markdown, page, config, files):
    docs_dir = Path(os.path.normpath(config["docs_dir"]))
    src_uri = page.file.src_uri
    site_dir = posixpath.dirname(src_uri)
    source_dir = SOURCE.parent if src_uri == SITE_PATH else docs_dir / site_dir
    return LINK.sub(lambda m: site_link(m.group(1), m.group(2), source_dir, site_dir, docs_dir), markdown)
