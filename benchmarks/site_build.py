"""How long the site takes to build, and to rebuild under ``mkdocs serve`` after an edit.

Run from the repository root (not a test; the numbers depend on the machine and its load)::

    .venv/bin/python benchmarks/site_build.py            # this checkout
    .venv/bin/python benchmarks/site_build.py --root /path/to/other/checkout

It copies the project into a scratch folder (no build cache, as after a fresh clone) and prints one
table:

1. ``mkdocs build --strict`` with an empty cache, then again with the cache it left (``make build``);
2. ``mkdocs serve`` with an empty cache: from the start to the first page served (the first
   ``make serve`` after a clone);
3. rebuilds in that same ``mkdocs serve``, each timed from the moment a file is saved to the
   moment the server returns the rebuilt page with the edit in it (what a writer waits for): a
   save without change, a journal entry edited, a concept page edited, a notebook edited (a
   Markdown cell added to ``docs/notebooks/vit_background.py``: that notebook runs again), a
   ``refimpl`` module edited (``refimpl/kan.py``'s docstring, shown on its API page). For each rebuild it lists the
   notebooks executed and the figure modules redrawn, read from the server's log.

The real ``mkdocs serve`` is driven (a subprocess, its own file watcher, HTTP), rather than an
in-process ``build()``: serve reloads the configuration and keeps imported modules across
rebuilds, which an in-process loop would only imitate. CPU seconds are those of the build and the
notebook kernels it ran; on a shared machine they say more than the wall time, which grows with
the other jobs' load (printed first).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from paper_notes.project import copy_site_sources

ENV = {**os.environ, "DISABLE_MKDOCS_2_WARNING": "true", "NO_MKDOCS_2_WARNING": "1"}
JOURNAL_ENTRY = ("docs/journal/posts/2024-10-26-mae-figure1.md", "journal/2024-10-26-mae-figure1/")
CONCEPT_PAGE = ("docs/concepts/mae.md", "concepts/mae/")
NOTEBOOK = ("docs/notebooks/vit_background.py", "notebooks/vit_background/")
REFIMPL_MODULE = ("refimpl/kan.py", "reference/refimpl/kan/")
# Log lines of this checkout's notebooks (paper_notes.notebooks) and, for a checkout from before
# them (--root at 0.1.0), of mkdocs-jupyter.
NOTEBOOK_RUN = re.compile(r"(?:executing notebook: |Converting notebook \(execute=True\): .*?)([\w-]+)\.py")
FIGURES_DRAWN = re.compile(r"drew (\d+) figure\(s\) of paper_notes\.figures\.(\w+)")
NOTEBOOK_CACHE = re.compile(r"notebook cache hit|Cache (?:hit|miss)")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def strict_build(project: Path) -> tuple[float, float, str]:
    """``(wall s, CPU s, log)`` of ``mkdocs build --strict`` in ``project``."""
    cpu, start = children_cpu(), time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(project / "site")],
                            cwd=project, env=ENV, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"mkdocs build --strict failed:\n{result.stderr[-3000:]}")
    return wall, children_cpu() - cpu, result.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``mkdocs serve`` in ``project``; its log lines are kept with the time each arrived."""

    def __init__(self, project: Path) -> None:
        self.port = free_port()
        self.lines: list[tuple[float, str]] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mkdocs", "serve", "--dev-addr", f"127.0.0.1:{self.port}"],
            cwd=project, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:  # type: ignore[union-attr]
            self.lines.append((time.perf_counter(), line.rstrip()))

    def get(self, path: str) -> str | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/{path}", timeout=5) as response:
                return response.read().decode("utf-8", errors="replace")
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return None

    def wait_for_page(self, path: str, marker: str, timeout: float = 300) -> float:
        """Poll until the page contains ``marker``; return the moment it did."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                sys.exit("mkdocs serve stopped:\n" + "\n".join(line for _, line in self.lines[-40:]))
            text = self.get(path)
            if text is not None and marker in text:
                return time.perf_counter()
            if any("Aborted" in line or "ERROR" in line for _, line in list(self.lines)):
                sys.exit("mkdocs serve reported an error:\n" + "\n".join(line for _, line in self.lines[-40:]))
            time.sleep(0.05)
        sys.exit(f"no {marker!r} on /{path} after {timeout} s")

    def wait_for_log(self, pattern: str, after: float, timeout: float = 600) -> float:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            for stamp, line in list(self.lines):
                if stamp >= after and pattern in line:
                    return stamp
            time.sleep(0.05)
        sys.exit(f"no log line with {pattern!r} after {timeout} s; the server's last lines:\n"
                 + "\n".join(line for _, line in self.lines[-40:]))

    def cpu_seconds(self) -> float:
        """CPU time of the server and of the notebook kernels it has waited for (Linux /proc)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rpartition(")")[2].split()
        # utime, stime, cutime, cstime are fields 14-17 of stat(5); fields[0] here is field 3.
        return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")

    def log_since(self, start: float) -> str:
        return "\n".join(line for stamp, line in list(self.lines) if stamp >= start)

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def reruns(log: str) -> str:
    """Which notebooks executed and which figure modules were redrawn, from a build's log."""
    notebooks = sorted(set(NOTEBOOK_RUN.findall(log)))
    figures = [f"{module} ({n})" for n, module in FIGURES_DRAWN.findall(log)]
    cached = bool(NOTEBOOK_CACHE.search(log) or FIGURES_DRAWN.search(log))
    text = "notebooks: " + (", ".join(notebooks) or "none")
    text += "; figures: " + (", ".join(figures) or "none") if cached else "; figures: all (no figure cache)"
    return text


def edit(project: Path, rel: str, marker: str) -> None:
    path = project / rel
    text = path.read_text(encoding="utf-8")
    if rel.startswith("docs/notebooks/"):  # a Markdown cell at the end
        text = text.rstrip() + f"\n\n# %% [markdown]\n# {marker}\n"
    elif rel.endswith(".py"):  # first line of the module docstring: shown on the API page
        text = text.replace('"""', f'"""{marker}. ', 1)
    else:
        text = text.rstrip() + f"\n\n{marker}\n"
    path.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1],
                        help="the checkout to measure (default: this one)")
    args = parser.parse_args()
    rows: list[tuple[str, float, str]] = []
    print(f"measuring {args.root} on {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="site-bench-") as tmp:
        project = Path(tmp)
        copy_site_sources(args.root.resolve(), project)

        wall, cpu, log = strict_build(project)
        rows.append(("strict build, empty cache (first make build)", wall, f"{cpu:.0f} s CPU; {reruns(log)}"))
        print(rows[-1], flush=True)
        wall, cpu, log = strict_build(project)
        rows.append(("strict build, cache kept (make build again)", wall, f"{cpu:.0f} s CPU; {reruns(log)}"))
        print(rows[-1], flush=True)
        shutil.rmtree(project / ".cache", ignore_errors=True)
        shutil.rmtree(project / "site", ignore_errors=True)

        start = time.perf_counter()
        server = Server(project)
        try:
            served = server.wait_for_log("Serving on", start)
            server.wait_for_page("", "paper-notes")
            rows.append(("mkdocs serve, empty cache: first page served", served - start,
                         f"{server.cpu_seconds():.0f} s CPU; {reruns(server.log_since(start))}"))
            print(rows[-1], flush=True)
            time.sleep(2)  # let the watcher settle

            start, cpu = time.perf_counter(), server.cpu_seconds()
            path = project / JOURNAL_ENTRY[0]
            path.write_bytes(path.read_bytes())
            done = server.wait_for_log("Documentation built in", start)
            time.sleep(0.5)  # the CPU figure is read after the build has finished
            rows.append(("rebuild: entry saved unchanged", done - start,
                         f"{server.cpu_seconds() - cpu:.1f} s CPU; {reruns(server.log_since(start))}"))
            print(rows[-1], flush=True)

            for n, (label, (rel, url)) in enumerate(
                    [("journal entry edited", JOURNAL_ENTRY), ("concept page edited", CONCEPT_PAGE),
                     ("notebook edited", NOTEBOOK), ("refimpl/kan.py edited", REFIMPL_MODULE)]):
                time.sleep(2)
                marker = f"bench-marker-{n}-{int(time.time())}"
                start, cpu = time.perf_counter(), server.cpu_seconds()
                edit(project, rel, marker)
                done = server.wait_for_page(url, marker)
                server.wait_for_log("Documentation built in", start)
                time.sleep(0.5)
                rows.append((f"rebuild: {label}", done - start,
                             f"{server.cpu_seconds() - cpu:.1f} s CPU; {reruns(server.log_since(start))}"))
                print(rows[-1], flush=True)
        finally:
            server.stop()

    print()
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    print("| what | seconds | notes |")
    print("| --- | ---: | --- |")
    for label, seconds, notes in rows:
        print(f"| {label} | {seconds:.1f} | {notes} |")


if __name__ == "__main__":
    main()
