# SPDX-License-Identifier: Apache-2.0
"""The agent's tests, laid out as the package they test.

``tests/<sub>/test_<mod>*.py`` tests ``pdnssoc_agent/<sub>/<mod>.py`` (a package's
own ``__init__`` by the package's or the step's name); ``tests/test_<mod>*.py``
tests a top-level module. Shared helpers live in ``tests/support/``.
"""
