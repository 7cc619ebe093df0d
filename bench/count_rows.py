#!/usr/bin/env python3
"""Count the rows of an Iceberg table with PyIceberg, a reader independent of both writers.

    count_rows.py floe --catalog-db DB --warehouse DIR --table ns.table   # floe's SQLite catalog
    count_rows.py dlt --table-dir DIR                                     # dlt: no catalog kept

Prints the row count. The rows are scanned (one column), not taken from snapshot summaries, so
a table whose data files are unreadable or missing fails here.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import sys


def count(table) -> int:
    column = table.schema().fields[0].name
    return table.scan(selected_fields=(column,)).to_arrow().num_rows


def floe_table(db: str, warehouse: str, name: str):
    from pyiceberg.catalog.sql import SqlCatalog

    catalog = SqlCatalog("floe", uri=f"sqlite:///{os.path.abspath(db)}", warehouse=f"file://{os.path.abspath(warehouse)}",
                         init_catalog_tables="false")
    return catalog.load_table(name)


def dlt_table(table_dir: str):
    from pyiceberg.table import StaticTable

    # dlt persists no catalog: the newest metadata file is the table (names start with a version).
    def version(path: str) -> tuple[int, float]:
        m = re.match(r"(\d+)-", os.path.basename(path))
        return (int(m.group(1)) if m else -1, os.path.getmtime(path))

    files = glob.glob(os.path.join(table_dir, "metadata", "*.metadata.json"))
    if not files:
        raise FileNotFoundError(f"no Iceberg metadata under {table_dir}/metadata")
    return StaticTable.from_metadata(f"file://{os.path.abspath(max(files, key=version))}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="writer", required=True)
    f = sub.add_parser("floe")
    f.add_argument("--catalog-db", required=True)
    f.add_argument("--warehouse", required=True)
    f.add_argument("--table", required=True)
    d = sub.add_parser("dlt")
    d.add_argument("--table-dir", required=True)
    args = ap.parse_args()
    try:
        table = floe_table(args.catalog_db, args.warehouse, args.table) if args.writer == "floe" else dlt_table(args.table_dir)
        print(count(table))
    except Exception as exc:  # noqa: BLE001 - the caller prints the reason beside the case
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
