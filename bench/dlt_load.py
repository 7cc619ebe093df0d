#!/usr/bin/env python3
"""Load one benchmark case with dlt into an Iceberg table on a local filesystem destination.

    dlt_load.py CASE VARIANT --input PATH_OR_URL --out DIR --work DIR

CASE: jsonl | csv | parquet | postgres | rest. VARIANT: default (what dlt's docs show first)
or fastest (the Arrow path dlt recommends for speed: pyarrow readers, connectorx); postgres also
pyarrow (sql_table's `pyarrow` backend). The table is
<out>/bench/events. Prints the extract/normalize/load seconds on stderr, to tell where dlt's time goes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")

import dlt  # noqa: E402

TABLE = "events"


def arrow_schema():  # the same explicit schema for the JSONL and Parquet Arrow paths
    import pyarrow as pa

    return pa.schema([
        ("id", pa.int64()), ("ts", pa.timestamp("us", tz="UTC")), ("user", pa.string()), ("amount", pa.float64()),
        ("payload", pa.struct([
            ("event", pa.string()), ("session_id", pa.string()),
            ("device", pa.struct([("os", pa.string()), ("os_version", pa.string()),
                                  ("screen", pa.struct([("w", pa.int64()), ("h", pa.int64())]))])),
            ("geo", pa.struct([("country", pa.string()), ("city", pa.string()), ("lat", pa.float64()),
                               ("lon", pa.float64())])),
            ("tags", pa.list_(pa.string())), ("is_test", pa.bool_()),
        ])),
    ])


def file_source(case: str, variant: str, path: str):
    from dlt.sources.filesystem import filesystem, read_csv, read_jsonl, read_parquet

    folder, name = os.path.split(os.path.abspath(path))
    if variant == "default":
        files = filesystem(bucket_url=f"file://{folder}", file_glob=name)
        reader = {"jsonl": read_jsonl, "csv": read_csv, "parquet": read_parquet}[case]()
        return (files | reader).with_name(TABLE)

    @dlt.resource(name=TABLE)
    def arrow_rows():
        import pyarrow as pa
        import pyarrow.csv as pc
        import pyarrow.json as pj
        import pyarrow.parquet as pq

        if case == "jsonl":
            # As peers.md §2 measured it: the whole file at once, payload as a struct.
            yield pj.read_json(path, parse_options=pj.ParseOptions(explicit_schema=arrow_schema()))
        elif case == "csv":
            convert = pc.ConvertOptions(column_types={"ts": pa.timestamp("us", tz="UTC")})
            with pc.open_csv(path, convert_options=convert) as reader:
                for batch in reader:
                    yield batch
        else:
            for batch in pq.ParquetFile(path).iter_batches(batch_size=65_536):
                yield batch

    return arrow_rows()


def postgres_source(variant: str, url: str):
    from dlt.sources.sql_database import sql_table

    backend = {"default": "sqlalchemy", "fastest": "connectorx", "pyarrow": "pyarrow"}[variant]
    return sql_table(credentials=url, table=TABLE, backend=backend)


def rest_source(base_url: str):
    from dlt.sources.rest_api import rest_api_source

    return rest_api_source({
        "client": {"base_url": base_url},
        "resources": [{
            "name": TABLE,
            "endpoint": {
                "path": "items",
                "data_selector": "data",
                "paginator": {"type": "page_number", "base_page": 1, "page_param": "page",
                              "total_path": "total_pages"},
            },
        }],
    })


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("case", choices=["jsonl", "csv", "parquet", "postgres", "rest"])
    ap.add_argument("variant", choices=["default", "fastest", "pyarrow"])
    ap.add_argument("--input", required=True, help="file, postgresql:// URL or REST base URL")
    ap.add_argument("--out", required=True, help="destination folder (bucket_url)")
    ap.add_argument("--work", required=True, help="dlt's pipelines folder (state, load packages)")
    args = ap.parse_args()

    if args.case == "postgres":
        source = postgres_source(args.variant, args.input)
    elif args.case == "rest":
        source = rest_source(args.input)
    else:
        source = file_source(args.case, args.variant, args.input)

    pipeline = dlt.pipeline(
        pipeline_name=f"bench_{args.case}_{args.variant}",
        pipelines_dir=args.work,
        destination=dlt.destinations.filesystem(bucket_url=f"file://{os.path.abspath(args.out)}"),
        dataset_name="bench",
    )
    phases = []
    t = time.perf_counter()
    pipeline.extract(source, table_name=TABLE, table_format="iceberg", loader_file_format="parquet")
    phases.append(("extract", time.perf_counter() - t))
    t = time.perf_counter()
    pipeline.normalize()
    phases.append(("normalize", time.perf_counter() - t))
    t = time.perf_counter()
    info = pipeline.load()
    phases.append(("load", time.perf_counter() - t))
    info.raise_on_failed_jobs()
    print("dlt phases: " + " ".join(f"{k}={v:.1f}s" for k, v in phases), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
