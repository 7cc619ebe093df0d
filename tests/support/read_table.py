#!/usr/bin/env python3
"""Read an Iceberg table back with PyIceberg (a reader independent of floe) and print it as JSON.

SQL catalog (e.g. the SQLite catalog iceberg-rust writes):
    python read_table.py --catalog sql --uri sqlite:////abs/catalog.db \
        --warehouse file:///abs/wh --table ns.t [--name floe]
REST catalog (SeaweedFS started by services.sh):
    python read_table.py --catalog rest --uri http://127.0.0.1:8181 --warehouse warehouse \
        --credential minioadmin:minioadmin --s3-endpoint http://127.0.0.1:8333 \
        --s3-access-key minioadmin --s3-secret-key minioadmin --s3-region us-east-1 --table ns.t
Options: --snapshot-id N reads that snapshot instead of the current one;
--property KEY=VALUE (repeatable) adds any other catalog property.

Prints one JSON document on stdout:
    {"exists": true, "rows": [...], "schema": [...], "snapshots": N, "snapshot_ids": [...],
     "current_snapshot_id": ..., "current_snapshot_summary": {...}, "properties": {...},
     "identifier_field_names": [...]}
or {"exists": false} (exit 0) when the table, its namespace or the SQLite catalog file is missing.
Rows are sorted by json.dumps(row, sort_keys=True). Values: timestamps, dates and times as ISO 8601
strings (tz-aware ones end in +00:00), decimals as plain-notation strings, binary/fixed as
lowercase hex, UUIDs as strings, structs as objects, lists as arrays, maps as objects (non-string
keys are JSON-encoded into strings), NaN/Infinity floats as the strings "NaN"/"Infinity"/"-Infinity".
"schema" describes the schema of the snapshot read. Errors: a message on stderr, exit code 1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import decimal
import json
import math
import os
import sys
import uuid
from typing import Any


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # exit 1 (not argparse's 2) on usage errors
        self.print_usage(sys.stderr)
        print(f"read_table.py: error: {message}", file=sys.stderr)
        sys.exit(1)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = _Parser(description="Read an Iceberg table with PyIceberg and print it as JSON.")
    p.add_argument("--catalog", choices=["sql", "rest"], required=True, help="catalog type")
    p.add_argument("--uri", required=True, help="sqlite:////abs/catalog.db or http://host:port")
    p.add_argument("--warehouse", help="file:///abs/wh (sql) or the warehouse name (rest)")
    p.add_argument("--table", required=True, help="namespace.table (namespace may be dotted)")
    p.add_argument("--name", default="floe", help="catalog name, must match the writer's (default: floe)")
    p.add_argument("--credential", help="OAuth2 client credential id:secret (rest)")
    p.add_argument("--token", help="bearer token (rest)")
    p.add_argument("--s3-endpoint")
    p.add_argument("--s3-access-key")
    p.add_argument("--s3-secret-key")
    p.add_argument("--s3-region")
    p.add_argument("--snapshot-id", type=int, help="read this snapshot instead of the current one")
    p.add_argument(
        "--property", action="append", default=[], metavar="KEY=VALUE", help="extra catalog property"
    )
    return p.parse_args(argv)


def catalog_properties(args: argparse.Namespace) -> dict[str, str]:
    props: dict[str, str] = {"uri": args.uri}
    if args.warehouse:
        props["warehouse"] = args.warehouse
    if args.credential:
        props["credential"] = args.credential
    if args.token:
        props["token"] = args.token
    for key, value in (
        ("s3.endpoint", args.s3_endpoint),
        ("s3.access-key-id", args.s3_access_key),
        ("s3.secret-access-key", args.s3_secret_key),
        ("s3.region", args.s3_region),
    ):
        if value:
            props[key] = value
    for item in args.property:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--property expects KEY=VALUE, got {item!r}")
        props[key] = value
    return props


def sqlite_path(uri: str) -> str | None:
    """The file behind a SQLAlchemy sqlite URI (sqlite:////abs/file.db), or None if not a file."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        return None
    path = uri[len(prefix) :].split("?", 1)[0]
    if not path or path == ":memory:":
        return None
    return path


def to_json_value(value: Any, arrow_type: Any = None) -> Any:
    """Convert one value from pyarrow's to_pylist() into a JSON-friendly form."""
    import pyarrow as pa

    if value is None:
        return None
    if arrow_type is not None:
        if pa.types.is_map(arrow_type):
            out = {}
            for k, v in value:  # pyarrow gives a map as a list of (key, value) tuples
                jk = to_json_value(k, arrow_type.key_type)
                if not isinstance(jk, str):
                    jk = json.dumps(jk, sort_keys=True)
                out[jk] = to_json_value(v, arrow_type.item_type)
            return out
        if pa.types.is_struct(arrow_type):
            return {
                arrow_type.field(i).name: to_json_value(value.get(arrow_type.field(i).name), arrow_type.field(i).type)
                for i in range(arrow_type.num_fields)
            }
        if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type) or pa.types.is_fixed_size_list(arrow_type):
            return [to_json_value(v, arrow_type.value_type) for v in value]
        if isinstance(arrow_type, pa.ExtensionType):
            return to_json_value(value, None)
    # Untyped fallback.
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, str):
        return value
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if hasattr(value, "isoformat"):  # e.g. pandas.Timestamp for nanosecond timestamps
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_value(v) for v in value]
    return str(value)


def schema_json(schema: Any) -> list[dict[str, Any]]:
    return [
        {"name": f.name, "type": str(f.field_type), "required": bool(f.required), "field_id": f.field_id}
        for f in schema.fields
    ]


def identifier_names(schema: Any) -> list[str]:
    names = []
    for field_id in schema.identifier_field_ids:
        name = schema.find_column_name(field_id)
        names.append(name if name is not None else str(field_id))
    return names


def load_catalog(args: argparse.Namespace) -> Any:
    props = catalog_properties(args)
    if args.catalog == "sql":
        from pyiceberg.catalog.sql import SqlCatalog

        # A reader must not write: never create the catalog tables.
        props.setdefault("init_catalog_tables", "false")
        return SqlCatalog(args.name, **props)
    from pyiceberg.catalog.rest import RestCatalog

    return RestCatalog(args.name, **props)


def hint_other_catalog_names(args: argparse.Namespace) -> None:
    """A SQL catalog keys tables by catalog name: say so on stderr if --name is the likely cause."""
    path = sqlite_path(args.uri)
    if path is None:
        return
    namespace, _, name = args.table.rpartition(".")
    try:
        import sqlite3

        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            found = [
                r[0]
                for r in conn.execute(
                    "SELECT DISTINCT catalog_name FROM iceberg_tables WHERE table_namespace = ? AND table_name = ?",
                    (namespace, name),
                )
            ]
    except Exception:  # noqa: BLE001 - only a hint
        return
    if found:
        print(
            f"read_table.py: {args.table} is not in catalog {args.name!r} but is in {found!r}: pass --name",
            file=sys.stderr,
        )


def read(args: argparse.Namespace) -> dict[str, Any]:
    from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError

    if args.catalog == "sql":
        path = sqlite_path(args.uri)
        if path is not None and not os.path.exists(path):
            print(f"read_table.py: catalog file {path} does not exist", file=sys.stderr)
            return {"exists": False}

    catalog = load_catalog(args)
    try:
        table = catalog.load_table(args.table)
    except (NoSuchTableError, NoSuchNamespaceError):
        if args.catalog == "sql":
            hint_other_catalog_names(args)
        return {"exists": False}
    except Exception as exc:  # SQLite file without catalog tables
        if args.catalog == "sql" and "no such table" in str(exc).lower():
            return {"exists": False}
        raise

    metadata = table.metadata
    if args.snapshot_id is not None:
        if table.snapshot_by_id(args.snapshot_id) is None:
            raise ValueError(f"table {args.table} has no snapshot {args.snapshot_id}")
        scan = table.scan(snapshot_id=args.snapshot_id)
    else:
        scan = table.scan()
    read_schema = scan.projection()
    arrow = scan.to_arrow()

    rows = []
    columns = [(name, arrow.schema.field(name).type) for name in arrow.column_names]
    for raw in arrow.to_pylist():
        rows.append({name: to_json_value(raw.get(name), typ) for name, typ in columns})
    rows.sort(key=lambda r: json.dumps(r, sort_keys=True))

    current = table.current_snapshot()
    snapshots = list(metadata.snapshots)
    return {
        "exists": True,
        "rows": rows,
        "schema": schema_json(read_schema),
        "snapshots": len(snapshots),
        "snapshot_ids": [s.snapshot_id for s in snapshots],
        "current_snapshot_id": current.snapshot_id if current is not None else None,
        "current_snapshot_summary": (
            current.summary.model_dump() if current is not None and current.summary is not None else None
        ),
        "properties": dict(table.properties),
        "identifier_field_names": identifier_names(table.schema()),
    }


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        text = json.dumps(read(args), allow_nan=False)
    except Exception as exc:  # noqa: BLE001
        print(f"read_table.py: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
