# SPDX-License-Identifier: Apache-2.0
"""Helpers shared by the agent's tests, one module per thing they help test.

Tests import them as ``tests.support.<module>``: ``tests`` is a package, so
pytest puts the agent directory on the import path (its default
``prepend`` import mode) and nothing edits ``sys.path`` by hand.
"""
