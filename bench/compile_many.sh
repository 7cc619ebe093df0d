#!/usr/bin/env bash
# Times `floe compile` on a spec with N ingestion entries (default 1000).
#   bash bench/compile_many.sh [N]
set -euo pipefail
n=${1:-1000}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/floe-target}
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
floe="$CARGO_TARGET_DIR/release/floe"
printf 'plugins:\n  ingestion: {type: dlt}\n' >"$work/manifest.yaml"
{
	echo "ingestion:"
	for i in $(seq 1 "$n"); do
		cat <<ENTRY
  - name: entry_$i
    type: dlt
    destination: bronze.table_$i
    dlt:
      source: rest_api
      write_disposition: merge
      primary_key: id
      incremental: {cursor_column: updated_at, initial_value: "2024-01-01T00:00:00Z"}
      config:
        client: {base_url: "https://api.example.com", auth: {type: bearer, token: "\${secrets.token}"}}
        resources: [{name: items_$i, endpoint: {path: "items/$i", params: {since: "{incremental.start_value}"}}}]
    secret_refs: {token: api-token}
ENTRY
	done
} >"$work/floe.yaml"
cd "$work"
"$floe" compile --quiet # warm up
runs=10
start=$(date +%s%N)
for _ in $(seq $runs); do "$floe" compile --quiet; done
end=$(date +%s%N)
echo "floe compile, $n entries ($(wc -c <floe.yaml) bytes of YAML): $(( (end - start) / runs / 1000000 )) ms per run (mean of $runs)"
