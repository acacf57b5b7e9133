# SPDX-License-Identifier: Apache-2.0
"""The analysts' web view (``pdnssoc-agent web``; docs/web.md).

:mod:`.app` is a WSGI application over the configuration (testable without a
socket); :mod:`.serve` serves it with TLS and client certificates, or behind an
authenticating proxy; :mod:`.auth` decides who is in; :mod:`.csrf` guards the
suppression forms; :mod:`.alerts` and :mod:`.chart` gather what the pages show.
Everything is read-only except suppression rules, which go through
:mod:`pdnssoc_agent.suppress.store` like ``suppress add|remove``.
"""
