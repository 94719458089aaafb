"""Counting the argument checks of ``refimpl.checks`` while a call runs: proof that each input is checked once.

``counting_checks()`` wraps every public helper of ``refimpl.checks`` with a counter keyed by the
argument name it is given; only the outermost check counts (``checks.images`` calls
``checks.finite`` itself). Tests import it as ``from checks_counter import counting_checks``.
"""

from __future__ import annotations

import contextlib
import functools
from collections import Counter
from collections.abc import Callable, Iterator

from refimpl import checks


@contextlib.contextmanager
def counting_checks() -> Iterator[Counter]:
    """Count, by argument name, the checks that run while the block runs."""
    counts: Counter = Counter()
    depth = 0
    originals = {name: getattr(checks, name) for name in checks.__all__}

    def counted(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            nonlocal depth
            if depth == 0:
                name = kwargs.get("name", args[1] if len(args) > 1 else fn.__name__)
                counts[str(name)] += 1
            depth += 1
            try:
                return fn(*args, **kwargs)
            finally:
                depth -= 1

        return wrapper

    for name, fn in originals.items():
        setattr(checks, name, counted(fn))
    try:
        yield counts
    finally:
        for name, fn in originals.items():
            setattr(checks, name, fn)


def checked_twice(call: Callable[[], object]) -> dict[str, int]:
    """The arguments ``call`` checks more than once, with how often."""
    with counting_checks() as counts:
        call()
    return {name: n for name, n in counts.items() if n > 1}
