"""MibViews for the standalone tests: cronwrap instances in agentx_views' sorted, bisected view."""

from __future__ import annotations

from typing import Any

import agentx_views
from cronwrap.agent import mib
from cronwrap.agent.mibview import Oid
from pysnmp.proto import rfc1902

SUBTREE: Oid = mib.ROOT
JOB_ENTRY: Oid = mib.JOB_ENTRY
row_index = mib.row_index


class SortedView(agentx_views.SortedView):
    """A MibView over fixed cronwrap instances: a Get under a value column is noSuchInstance."""

    def __init__(self, values: dict[Oid, Any]) -> None:
        super().__init__(values.items(), objects=[mib.column_oid(c) for c in mib.VALUE_COLUMNS])


def job_rows(count: int) -> dict[Oid, Any]:
    """`count` jobs of 13 columns each, plus cronJobCount.0."""
    count_oid = mib.scalar_oid(mib.Scalar.cronJobCount) + (0,)
    values: dict[Oid, Any] = {count_oid: rfc1902.Gauge32(count)}
    for number in range(count):
        index = row_index("root", f"job-{number:05d}")
        for column in mib.VALUE_COLUMNS:
            values[mib.column_oid(column) + index] = (
                rfc1902.OctetString(b"") if column in (10, 11, 14)
                else rfc1902.Integer32(number) if column in (8, 9, 13)
                else rfc1902.Counter32(number * column)
            )
    return values
