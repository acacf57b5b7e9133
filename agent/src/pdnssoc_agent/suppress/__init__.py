# SPDX-License-Identifier: Apache-2.0
"""Triage that sticks: suppression rules (:mod:`.rules`), where they are kept
(:mod:`.store`) and what they silenced (:mod:`.stats`)."""
