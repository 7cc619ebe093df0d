#!/usr/bin/env python3
"""Generate the benchmark's event data (seeded, so every run and every tool sees the same rows).

    gen_data.py jsonl ROWS OUT.jsonl
    gen_data.py csv ROWS OUT.csv            # payload as a JSON text column, as dlt's benchmark
    gen_data.py parquet JSONL OUT.parquet   # converts the JSONL (needs pyarrow)
    gen_data.py rows ROWS                   # the rows as JSON lines on stdout (the REST server's)

Shape (peers.md §2): id, ts (µs ISO-8601 Z), user (50k distinct emails), amount (lognormal),
payload {event, session_id, device{os, os_version, screen{w,h}}, geo{country, city, lat, lon},
tags[0-3], is_test}. Every string is plain ASCII without quotes or backslashes, so the lines
are formatted directly: json.dumps per row would make generating 10M rows several times slower.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import random
import sys
from typing import Iterator

SEED = 42
USERS = 50_000
EVENTS = ["page_view", "click", "add_to_cart", "purchase", "signup", "logout"]
OSES = [("ios", ["16.7", "17.4", "17.5"]), ("android", ["12", "13", "14"]), ("windows", ["10", "11"]),
        ("macos", ["13.6", "14.4"]), ("linux", ["6.1", "6.8"])]
SCREENS = [(390, 844), (1080, 2400), (1920, 1080), (2560, 1440), (1440, 900)]
GEO = [("DE", "Berlin", 52.52, 13.40), ("FR", "Paris", 48.86, 2.35), ("US", "New York", 40.71, -74.01),
       ("US", "San Francisco", 37.77, -122.42), ("JP", "Tokyo", 35.68, 139.69), ("BR", "Sao Paulo", -23.55, -46.63),
       ("IN", "Bangalore", 12.97, 77.59), ("GB", "London", 51.51, -0.13)]
TAGS = ["new", "returning", "promo", "mobile", "beta", "vip", "churn_risk"]
DOMAINS = ["example.com", "mail.test", "corp.example"]
START = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


def rows(n: int) -> Iterator[tuple[str, str, str, str, str]]:
    """(id, ts, user, amount, payload-json) as text, for rows 1..n."""
    rnd = random.Random(SEED)
    start_us = int(START.timestamp()) * 1_000_000
    t = start_us
    for i in range(1, n + 1):
        t += rnd.randrange(1, 60_000_000)  # strictly increasing, ~30 s apart
        secs, us = divmod(t, 1_000_000)
        ts = dt.datetime.fromtimestamp(secs, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + f".{us:06d}Z"
        u = rnd.randrange(USERS)
        user = f"user{u}@{DOMAINS[u % 3]}"
        amount = f"{math.exp(rnd.gauss(3.0, 1.0)):.2f}"
        os_name, versions = OSES[rnd.randrange(len(OSES))]
        w, h = SCREENS[rnd.randrange(len(SCREENS))]
        country, city, lat, lon = GEO[rnd.randrange(len(GEO))]
        tags = ",".join(f'"{x}"' for x in rnd.sample(TAGS, rnd.randrange(4)))
        payload = (
            f'{{"event":"{EVENTS[rnd.randrange(len(EVENTS))]}","session_id":"{rnd.getrandbits(64):016x}",'
            f'"device":{{"os":"{os_name}","os_version":"{versions[rnd.randrange(len(versions))]}",'
            f'"screen":{{"w":{w},"h":{h}}}}},'
            f'"geo":{{"country":"{country}","city":"{city}","lat":{lat + rnd.uniform(-0.2, 0.2):.5f},'
            f'"lon":{lon + rnd.uniform(-0.2, 0.2):.5f}}},'
            f'"tags":[{tags}],"is_test":{"true" if rnd.random() < 0.02 else "false"}}}'
        )
        yield str(i), ts, user, amount, payload


def write_atomic(path: str, lines: Iterator[str]) -> None:
    # A half-written file must never be mistaken for a cached data set.
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="ascii", buffering=1 << 22) as f:
        f.writelines(lines)
    os.replace(tmp, path)


def jsonl_lines(n: int) -> Iterator[str]:
    for i, ts, user, amount, payload in rows(n):
        yield f'{{"id":{i},"ts":"{ts}","user":"{user}","amount":{amount},"payload":{payload}}}\n'


def csv_lines(n: int) -> Iterator[str]:
    yield "id,ts,user,amount,payload\n"
    for i, ts, user, amount, payload in rows(n):
        quoted = payload.replace('"', '""')
        yield f'{i},{ts},{user},{amount},"{quoted}"\n'


def to_parquet(jsonl: str, out: str) -> None:
    import pyarrow as pa
    import pyarrow.json as pj
    import pyarrow.parquet as pq

    schema = pa.schema([
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
    reader = pj.open_json(jsonl, parse_options=pj.ParseOptions(explicit_schema=schema),
                          read_options=pj.ReadOptions(block_size=16 << 20))
    tmp = f"{out}.tmp"
    # 128k-row groups: several per file, as a typical writer leaves them, so readers can split.
    with pq.ParquetWriter(tmp, schema, compression="zstd") as w:
        buf: list = []
        size = 0
        for batch in reader:
            buf.append(batch)
            size += batch.num_rows
            if size >= 131_072:
                w.write_table(pa.Table.from_batches(buf), row_group_size=131_072)
                buf, size = [], 0
        if buf:
            w.write_table(pa.Table.from_batches(buf), row_group_size=131_072)
    os.replace(tmp, out)


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "rows":
        sys.stdout.writelines(jsonl_lines(int(argv[1])))
        return 0
    if len(argv) != 3 or argv[0] not in ("jsonl", "csv", "parquet"):
        print(__doc__, file=sys.stderr)
        return 2
    kind, arg, out = argv
    if kind == "jsonl":
        write_atomic(out, jsonl_lines(int(arg)))
    elif kind == "csv":
        write_atomic(out, csv_lines(int(arg)))
    else:
        to_parquet(arg, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
