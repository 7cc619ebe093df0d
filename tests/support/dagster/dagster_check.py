#!/usr/bin/env python3
"""Inspect a generated floe Dagster module with Dagster itself; print JSON on stdout.

    python dagster_check.py describe MODULE.py
    python dagster_check.py materialize MODULE.py ASSET/KEY

Both load MODULE.py from its path (as `dagster -f` does).

`describe` prints the asset specs of its `defs`, sorted by key:
    [{"key": [...], "group": str, "kinds": [sorted], "description": str,
      "metadata": {key: value}, "code_version": str}]

`materialize` runs `dagster.materialize` on its `assets` with the selection ASSET/KEY against
an ephemeral instance, and prints:
    {"success": bool,
     "materializations": [{"asset_key": [...], "metadata": {key: value}, "data_version": str|null}],
     "failures": [{"step_key": str, "message": str, "description": str, "metadata": {key: value}}],
     "retries": [{"step_key": str, "seconds_to_wait": float|null, "message": str}],
     "events": [event type names, in order]}
Metadata values are the plain values of Dagster's metadata entries (ints, floats, strings, JSON).
Exit code 0 whenever the run happened (even if it failed); 1 if the module cannot be loaded.
Floe's and Dagster's logs go to stderr.
"""

import importlib.util
import json
import sys

import dagster as dg


def plain(value):
    """The JSON-friendly value of a Dagster metadata value."""
    inner = getattr(value, "value", value)
    if isinstance(inner, (str, int, float, bool)) or inner is None:
        return inner
    if isinstance(inner, (list, dict)):
        return inner
    return str(inner)


def metadata_json(metadata):
    return {key: plain(value) for key, value in sorted((metadata or {}).items())}


def load(module_path):
    spec = importlib.util.spec_from_file_location("floe_dagster_definitions", module_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def describe(module):
    out = []
    for spec in module.defs.resolve_all_asset_specs():
        out.append(
            {
                "key": list(spec.key.path),
                "group": spec.group_name,
                "kinds": sorted(spec.kinds),
                "description": spec.description,
                "metadata": metadata_json(spec.metadata),
                "code_version": spec.code_version,
            }
        )
    return sorted(out, key=lambda a: a["key"])


def materialize(module, key):
    asset_key = dg.AssetKey(key.split("/"))
    result = dg.materialize(
        module.assets,
        selection=[asset_key],
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    out = {"success": result.success, "materializations": [], "failures": [], "retries": [], "events": []}
    for event in result.all_events:
        out["events"].append(event.event_type_value)
        if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            m = event.event_specific_data.materialization
            tags = m.tags or {}
            out["materializations"].append(
                {
                    "asset_key": list(m.asset_key.path),
                    "metadata": metadata_json(m.metadata),
                    "data_version": tags.get("dagster/data_version"),
                }
            )
        elif event.event_type == dg.DagsterEventType.STEP_FAILURE:
            data = event.event_specific_data
            error = data.error
            message = error.message if error is not None else ""
            user = getattr(data, "user_failure_data", None)
            out["failures"].append(
                {
                    "step_key": event.step_key,
                    "message": message,
                    "description": getattr(user, "description", None),
                    "metadata": metadata_json(getattr(user, "metadata", None)),
                }
            )
        elif event.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY:
            data = event.event_specific_data
            out["retries"].append(
                {
                    "step_key": event.step_key,
                    "seconds_to_wait": getattr(data, "seconds_to_wait", None),
                    "message": event.message,
                }
            )
    return out


def main(argv):
    if len(argv) >= 3 and argv[1] == "describe":
        out = describe(load(argv[2]))
    elif len(argv) >= 4 and argv[1] == "materialize":
        out = materialize(load(argv[2]), argv[3])
    else:
        sys.stderr.write(__doc__)
        return 2
    json.dump(out, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
