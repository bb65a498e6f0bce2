"""memwarden's benchmarks: ``python -m bench.run`` (``make bench``), ``--quick`` for small sizes.

Each public module of this package (a name without a leading underscore, other than ``run``)
is a bench module: it registers one or more benchmarks with ``@benchmark(...)`` from
``bench._harness`` and is discovered by ``bench.run`` on its own, so a new issue adds its
benchmark by adding a file. A benchmark returns ``Result`` objects; each is written to
``bench/results/<name>.json`` and shown in one table at the end. Speed targets are ratios
against a baseline measured in the same run, never absolute timings asserted in tests.
"""
