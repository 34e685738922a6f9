"""Offline pysmi compilation of CRON-JOBS-MIB: to a JSON document, or to pysnmp MIB modules.

Only local MIB sources are read (our mibs/ directory with its SNMPv2-SMI/-TC/-CONF stand-ins,
and Net-SNMP's directory for NET-SNMP-MIB); no network borrowers.  pysmi is imported lazily so
importing the agent does not pay for it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

MODULE = "CRON-JOBS-MIB"
NET_SNMP_MIB_DIR = Path("/usr/share/snmp/mibs")  # NET-SNMP-MIB, from Debian's libsnmp-base


class MibCompileError(Exception):
    """pysmi could not compile the MIB or one of its imports."""


def default_mib_dirs() -> list[Path]:
    """Our MIBs (the source tree's mibs/, installed as cronwrap.mibs), then Net-SNMP's."""
    return [Path(__file__).resolve().parent.parent / "mibs", NET_SNMP_MIB_DIR]


def _compile(codegen: Any, writer: Any, mib_dirs: Sequence[Path], **options: Any) -> None:
    from pysmi.compiler import MibCompiler
    from pysmi.parser import SmiStarParser
    from pysmi.reader import FileReader
    from pysmi.searcher import StubSearcher

    compiler = MibCompiler(SmiStarParser(), codegen, writer)
    compiler.add_sources(*(FileReader(str(d)) for d in mib_dirs))
    compiler.add_searchers(StubSearcher(*type(codegen).baseMibs))
    results = compiler.compile(MODULE, **options)
    bad = {name: status for name, status in results.items() if status in ("failed", "missing")}
    if bad:
        details = "; ".join(
            f"{name}: {status} {getattr(status, 'error', '')}".strip()
            for name, status in bad.items()
        )
        raise MibCompileError(f"pysmi could not compile {MODULE}: {details}")


def compile_json(mib_dirs: Sequence[Path] | None = None, texts: bool = False) -> dict[str, Any]:
    """CRON-JOBS-MIB as pysmi's JsonCodeGen document (descriptor -> definition); `texts` keeps
    each definition's DESCRIPTION (scripts/reference.py renders them)."""
    from pysmi.codegen import JsonCodeGen
    from pysmi.writer import CallbackWriter

    out: dict[str, str] = {}

    def store(name: str, data: str, _ctx: object) -> None:
        out[name] = data

    _compile(JsonCodeGen(), CallbackWriter(store), mib_dirs or default_mib_dirs(), noDeps=True,
             genTexts=texts)
    return json.loads(out[MODULE])


def compile_pysnmp(dest: Path, mib_dirs: Sequence[Path] | None = None) -> None:
    """Write CRON-JOBS-MIB.py (and NET-SNMP-MIB.py) into `dest` for pysnmp's MibBuilder."""
    from pysmi.codegen import PySnmpCodeGen
    from pysmi.writer import PyFileWriter

    dest.mkdir(parents=True, exist_ok=True)
    _compile(PySnmpCodeGen(), PyFileWriter(str(dest)), mib_dirs or default_mib_dirs(), rebuild=True)
