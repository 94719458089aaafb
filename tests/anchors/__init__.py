"""Builders of the anchors the tests and benchmarks compare with: never imported by ``refimpl``.

Benchmarks import them with the ``tests`` folder on ``sys.path`` (``benchmarks/u2net.py``).
"""
