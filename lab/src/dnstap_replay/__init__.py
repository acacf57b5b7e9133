# SPDX-License-Identifier: Apache-2.0
"""Replaying DNS replies into the real go-dnscollector as a resolver would send them.

``dnstap``: dnstap messages and a frame-stream sender for the collector's unix socket;
``traffic``: a day-like mix of replies (popular names, many clients, bursts, indicators);
``collector``: the role's configuration rendered and run with the pinned binary;
the traffic reducer's measurement is agent/benchmarks/bench_reducer.py (docs/transport.md).
"""
