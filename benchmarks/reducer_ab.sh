#!/bin/bash
# the single reducer (e071fb2, ${OLD:-/tmp/old}) against the map groups (2 at a time) on the same tile files
set -e
REPO=$(cd "$(dirname "$0")/.." && pwd)
PY=$REPO/.venv/bin/python
for d in r_old r_new; do rm -rf /tmp/sj/$d; cp -a /tmp/sj/w1500 /tmp/sj/$d; rm -rf /tmp/sj/$d/results /tmp/sj/$d/reduce; done
sync
cd /tmp; s=$(date +%s.%N); PYTHONPATH=${OLD:-/tmp/old} $PY -c "from eemt_flow.workflow.reduce import reduce_job; reduce_job('/tmp/sj/r_old')"; e=$(date +%s.%N)
echo "single reducer (e071fb2): $(echo "$e - $s" | bc) s"
cd /tmp/sj/r_new
groups=$($PY -c "import json; from eemt_flow.workflow.reduce import map_groups; print(' '.join(g.name for g in map_groups(json.load(open('job.json')))))")
s=$(date +%s.%N)
printf '%s\n' $groups | xargs -P 2 -I{} $REPO/.venv/bin/eemt-flow task reduce-maps --job job.json --group {}
$REPO/.venv/bin/eemt-flow task reduce --job job.json
e=$(date +%s.%N)
echo "map groups, 2 at a time + summary: $(echo "$e - $s" | bc) s ($(echo $groups | wc -w) groups)"
$PY - <<'PY'
import pathlib, filecmp
a=pathlib.Path("/tmp/sj/r_old/results"); b=pathlib.Path("/tmp/sj/r_new/results")
tifs=[p.relative_to(a) for p in a.rglob("*.tif")]
same=sum(filecmp.cmp(a/r, b/r, shallow=False) for r in tifs)
print(f"COGs byte-identical: {same} of {len(tifs)}")
PY
