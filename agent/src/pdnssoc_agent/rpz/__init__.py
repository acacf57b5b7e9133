# SPDX-License-Identifier: Apache-2.0
"""Response-policy zones from the indicators: owner names (:mod:`.names`), what a
zone leaves out (:mod:`.exempt`), the zone's text (:mod:`.zone`), and checking,
installing and announcing it (:mod:`.publish`). See docs/rpz.md."""
