# SPDX-License-Identifier: Apache-2.0
"""The row layout of the history store (one Arrow schema, written as Parquet).

=========  ==========================  ============================================
column     type                        what
=========  ==========================  ============================================
rname      string                      query name, lower case, trailing dots off,
                                       characters reversed (``moc.elpmaxe.www``):
                                       the sort key
qname      string, null                the query name as the sensor sent it, only
                                       when it differs from ``rname`` reversed
qtype      string                      ``A``, ``AAAA``, ... ("" in minified archives)
rcode      string                      ``NOERROR``, ``NXDOMAIN``, ...
sensor     string                      dnstap identity (the institution)
client     string                      the client as the sensor sent it (masked,
                                       hashed or as is)
cnames     list<string>                CNAME targets of the answer, in order
ip4        list<uint32>                A answers, in order
ip6        list<fixed_size_binary 16>  AAAA answers, in order
count      uint32                      replies the row stands for
first      timestamp[us, UTC]          first of them seen by the sensor
span_us    int64                       microseconds from first to last of them
                                       (0 for a single reply: most rows)
=========  ==========================  ============================================

The last-seen time is kept as a span from the first (zero for most rows, so
it costs almost nothing on disk). A row stands for every reply with the same
(bucket of ``first``, sensor, client, qname, qtype, rcode, cnames, ip4, ip6)
that one batch held; rows of the same key written by different batches are
merged when segments are compacted, and added up by queries until then.
"""

from __future__ import annotations

import pyarrow as pa

FORMAT = "pdnssoc-history/1"
BUCKET_SECONDS = {"hour": 3600, "day": 86400}

TIME = pa.timestamp("us", tz="UTC")

SCHEMA = pa.schema(
    [
        pa.field("rname", pa.string(), nullable=False),
        pa.field("qname", pa.string()),
        pa.field("qtype", pa.string(), nullable=False),
        pa.field("rcode", pa.string(), nullable=False),
        pa.field("sensor", pa.string(), nullable=False),
        pa.field("client", pa.string(), nullable=False),
        pa.field("cnames", pa.list_(pa.string()), nullable=False),
        pa.field("ip4", pa.list_(pa.uint32()), nullable=False),
        pa.field("ip6", pa.list_(pa.binary(16)), nullable=False),
        pa.field("count", pa.uint32(), nullable=False),
        pa.field("first", TIME, nullable=False),
        pa.field("span_us", pa.int64(), nullable=False),
    ],
    metadata={"format": FORMAT},
)

SORT_KEYS = [("rname", "ascending"), ("sensor", "ascending"), ("client", "ascending"),
             ("first", "ascending")]  # fmt: skip
