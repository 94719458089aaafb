"""paper-notes tooling: the reading list, the diary, the glossary and the site build.

This is not reference code (that is ``refimpl``): it validates ``papers/``, ``glossary.yaml`` and
``docs/journal/``, generates pages from them, and provides the ``notes`` command.
"""

__version__ = "0.2.0"
