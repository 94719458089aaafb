"""``notes``: the diary's command line.

- ``notes new "标题" --paper mae [--paper hiera] [--tag 掩码] [--date 2024-10-28] [--slug x] [--edit]``
- ``notes check``: validate every paper, glossary term and entry, as the site build would.
- ``notes papers``: the reading list with status.
- ``notes add-paper ID --title T --author A [--author B] --venue V --year Y [--arxiv X] ...``:
  a new ``papers/ID.yaml`` with every field, checked against the schema.
- ``notes status ID [to-read|reading|read]``: show or set a paper's reading status (only that
  line of its file changes).

Exit codes: 0 success; 1 ``check`` found problems; 2 bad usage, refused (a bad argument, a
project root, ``papers/`` or diary folder that is missing or not a folder), or the file system
would not take the write (nothing written); 3 ``new --edit`` wrote the entry but the editor could
not be started (``$EDITOR`` unset, not found, or not a valid command line) or exited with a
non-zero status. Every error is one line on stderr.

Before each command, temporary files that a killed write left in ``papers/`` and the diary's
folder are removed and reported (see [`remove_stale_temporaries`][paper_notes.files.remove_stale_temporaries]).
"""

from __future__ import annotations

import argparse
import errno
import os
import shlex
import subprocess
import sys
from pathlib import Path

from . import __version__
from refimpl.paths import path_problem

from .checks import check_project
from .files import remove_stale_temporaries, rewrite_file, write_new_file
from .journal import POSTS_DIR, new_entry, parse_date
from .project import find_root
from .registry import PAPER_ID, STATUS_LABELS, STATUSES, SchemaError, load_papers, new_paper_text, with_status


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse's own convention)
        self.exit(2, f"notes: error: {message}\n")


def _fail(message: str) -> int:
    print(f"notes: error: {message}", file=sys.stderr)
    return 2


EDITOR_FAILED = 3
"""``notes new --edit``: the entry was written, the editor could not be started or failed."""


class _Refused(Exception):
    """A path or environment error found before a command runs: one line, exit 2."""


def _project_root(root_arg: str | None) -> Path:
    """The project root, checked once for every command: a folder with ``mkdocs.yml`` and ``papers/``,
    and a diary folder that is a folder if it exists.

    Raises:
        _Refused: naming the path and what it is instead.
    """
    if root_arg is None:
        try:
            root = find_root()
        except FileNotFoundError as exc:
            raise _Refused(str(exc)) from None
    else:
        root = Path(root_arg).absolute()
        problem = path_problem(root, kind="folder")
        if problem is not None:
            raise _Refused(f"--root {root_arg!r} {problem}; expected the project folder (with mkdocs.yml and papers/)")
        root = root.resolve()
    for part, kind in (("mkdocs.yml", "file"), ("papers", "folder")):
        problem = path_problem(root / part, kind=kind)
        if problem is not None:
            raise _Refused(f"{root / part} {problem}; expected a paper-notes project at {root} "
                           f"(a folder with mkdocs.yml and papers/)")
    posts = root / POSTS_DIR
    problem = path_problem(posts, kind="folder")
    if problem not in (None, "does not exist"):  # `notes new` creates it
        raise _Refused(f"the diary folder {posts} {problem}")
    return root


def _root(args: argparse.Namespace) -> Path:
    """The checked root (see ``main``), after removing what killed writes left behind."""
    root: Path = args.root_path
    folders = {root / "papers", root / POSTS_DIR}
    for path in (root / "papers").glob("*.y*ml"):  # a paper kept elsewhere: its writes happen there
        if path.is_symlink():
            folders.add(Path(os.path.realpath(path)).parent)
    for folder in sorted(folders):
        for tmp in remove_stale_temporaries(folder):
            print(f"notes: removed {tmp}, a temporary file left by an interrupted write", file=sys.stderr)
    return root


def _write_failed(exc: OSError) -> int:
    """One line for a write the file system refused (read-only folder, full disk, ...)."""
    where = exc.filename or "the file"
    return _fail(f"cannot write {where}: {exc.strerror or exc}; nothing was written")


def cmd_new(args: argparse.Namespace) -> int:
    try:
        root = _root(args)
        papers = load_papers(root / "papers")
        date = parse_date(args.date, "--date") if args.date is not None else None
        path = new_entry(
            root / POSTS_DIR,
            title=args.title,
            papers=args.paper,
            known_papers={pid: p.title for pid, p in papers.items()},
            tags=args.tag,
            date=date,
            slug=args.slug,
        )
    except FileExistsError as exc:
        return _fail(f"{exc.filename or exc} already exists; nothing was written (choose another --slug)")
    except (ValueError, FileNotFoundError) as exc:  # SchemaError is a ValueError
        return _fail(str(exc))
    except OSError as exc:
        return _write_failed(exc)
    try:
        shown = path.relative_to(Path.cwd())
    except ValueError:
        shown = path
    print(shown)
    if args.edit:
        return _edit(path, shown)
    return 0


def _edit(path: Path, shown: Path) -> int:
    """Open the new entry in ``$VISUAL`` or ``$EDITOR``: 0, or ``EDITOR_FAILED`` with one line.

    The editor's own status is not passed on: 1 would read as "check found problems".
    """
    name = "VISUAL" if os.environ.get("VISUAL") else "EDITOR"
    editor = os.environ.get(name)

    def failed(why: str) -> int:
        print(f"notes: error: {why}; the entry was written: {shown}", file=sys.stderr)
        return EDITOR_FAILED

    if not editor:
        return failed("--edit needs $EDITOR (or $VISUAL)")
    try:
        words = shlex.split(editor)
    except ValueError as exc:  # an unclosed quote
        return failed(f"${name} {editor!r} is not a valid command line ({exc}); expected e.g. 'code --wait'")
    if not words:
        return failed(f"${name} {editor!r} names no command; expected e.g. 'vim'")
    try:
        status = subprocess.call([*words, str(path)])
    except OSError as exc:
        return failed(f"cannot start the editor {words[0]!r} ({exc.strerror or exc})")
    if status < 0:
        return failed(f"the editor {words[0]!r} was stopped by signal {-status}")
    if status > 0:
        return failed(f"the editor {words[0]!r} exited with status {status}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    root = _root(args)
    skipped: list[str] = []
    problems = check_project(root, skipped=skipped)
    for problem in problems:
        print(problem, file=sys.stderr)
    for note in skipped:  # not a problem: what waits for the problems above to be fixed
        print(f"notes check: {note}")
    if problems:
        print(f"notes check: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    n_papers = len(list((root / "papers").glob("*.y*ml")))
    n_entries = len(list((root / POSTS_DIR).glob("*.md")))
    print(f"notes check: ok ({n_papers} papers, {n_entries} entries, glossary)")
    return 0


def cmd_papers(args: argparse.Namespace) -> int:
    try:
        papers = load_papers(_root(args) / "papers")
    except (SchemaError, FileNotFoundError) as exc:
        return _fail(str(exc))
    if args.status:
        papers = {k: p for k, p in papers.items() if p.status == args.status}
    width = max((len(pid) for pid in papers), default=2)
    for pid, paper in papers.items():
        label = f"{paper.status} ({STATUS_LABELS[paper.status]})"
        print(f"{pid:<{width}}  {label:<15} {paper.venue_year:<24} {paper.title}")
    return 0


def _status_label(status: str) -> str:
    return f"{status} ({STATUS_LABELS[status]})"


def cmd_add_paper(args: argparse.Namespace) -> int:
    try:
        root = _root(args)
        papers = load_papers(root / "papers")
        if not PAPER_ID.match(args.id):
            return _fail(f"paper id {args.id!r} is not valid; expected lowercase ASCII words joined by '-', "
                         f"e.g. sam2 or mask-rcnn (it becomes a URL and a BibTeX key)")
        unknown = [rid for rid in args.related if rid not in papers]
        if unknown:
            return _fail(f"--related {unknown[0]!r} is not a known paper id; expected one of: {', '.join(papers)}")
        path = root / "papers" / f"{args.id}.yaml"
        if args.id in papers:  # perhaps as papers/<id>.yml
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(papers[args.id].path))
        text = new_paper_text(path, title=args.title.strip(), authors=[a.strip() for a in args.author],
                              venue=args.venue.strip(), year=args.year,
                              arxiv=args.arxiv, doi=args.doi, url=args.url, code=args.code, status=args.status,
                              related=list(dict.fromkeys(args.related)), short_title=args.short_title.strip(),
                              tags=list(dict.fromkeys(t.strip() for t in args.tag)))
        write_new_file(path, text)
    except FileExistsError as exc:
        return _fail(f"{exc.filename or exc} already exists; nothing was written "
                     f"(edit it, or `notes status {args.id} STATUS`)")
    except (ValueError, FileNotFoundError) as exc:  # SchemaError is a ValueError
        return _fail(str(exc))
    except OSError as exc:
        return _write_failed(exc)
    print(path.relative_to(root).as_posix() if path.is_relative_to(root) else path)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    try:
        root = _root(args)
        papers = load_papers(root / "papers")
        paper = papers.get(args.id)
        if paper is None:
            return _fail(f"{args.id!r} is not a known paper id; expected one of: {', '.join(papers)}")
        if args.status is None:
            print(f"{paper.id}: {_status_label(paper.status)}")
            return 0
        if args.status != paper.status:  # through a symlink, keeping CRLF and a BOM: only the status changes
            rewrite_file(paper.path, lambda text: with_status(text, args.status, paper.path))
    except (ValueError, FileNotFoundError) as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _write_failed(exc)
    print(f"{paper.id}: {_status_label(paper.status)} -> {_status_label(args.status)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="notes", description="paper-notes: the study diary and reading list.")
    parser.add_argument("--version", action="version", version=f"notes {__version__}")
    parser.add_argument("--root", help="project root (default: found from the current directory)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    new = sub.add_parser("new", help="create a diary entry and print its path")
    new.add_argument("title", help="the entry's title, e.g. \"MAE 的解码器\"")
    new.add_argument("--paper", action="append", default=[], metavar="ID",
                     help="a paper id from papers/ that the entry discusses (repeatable; at least one)")
    new.add_argument("--tag", action="append", default=[], help="a tag (repeatable)")
    new.add_argument("--date", help="YYYY-MM-DD (default: today)")
    new.add_argument("--slug", help="ASCII name for the file/URL (default: from the title, or the paper ids)")
    new.add_argument("--edit", action="store_true", help="open the new entry in $EDITOR")
    new.set_defaults(func=cmd_new)

    check = sub.add_parser("check", help="validate papers, glossary and entries as the site build would")
    check.set_defaults(func=cmd_check)

    papers = sub.add_parser("papers", help="list the reading list with status")
    papers.add_argument("--status", choices=sorted(STATUS_LABELS), help="only papers with this status")
    papers.set_defaults(func=cmd_papers)

    add = sub.add_parser("add-paper", help="add a paper to the reading list (papers/ID.yaml) and print its path")
    add.add_argument("id", help="short id: lowercase ASCII words joined by '-', e.g. sam2")
    add.add_argument("--title", required=True)
    add.add_argument("--author", action="append", required=True, help="an author, in order (repeatable)")
    add.add_argument("--venue", required=True, help="e.g. CVPR, ICLR, TPAMI, arXiv")
    add.add_argument("--year", type=int, required=True)
    add.add_argument("--arxiv", help="arXiv id, e.g. 2111.06377")
    add.add_argument("--doi")
    add.add_argument("--url", help="landing page (http(s) URL)")
    add.add_argument("--code", help="official code (http(s) URL)")
    add.add_argument("--status", choices=STATUSES, default="to-read", help="reading status (default: to-read)")
    add.add_argument("--related", action="append", default=[], metavar="ID", help="a related paper id (repeatable)")
    add.add_argument("--short-title", default="", help="a few words for the reading list, e.g. MAE")
    add.add_argument("--tag", action="append", default=[], help="a topic to filter the reading list by (repeatable)")
    add.set_defaults(func=cmd_add_paper)

    status = sub.add_parser("status", help="show or set a paper's reading status")
    status.add_argument("id", help="a paper id from papers/")
    status.add_argument("status", nargs="?", choices=STATUSES, help="the new status (omit to show it)")
    status.set_defaults(func=cmd_status)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.root_path = _project_root(args.root)
    except _Refused as exc:
        return _fail(str(exc))
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
