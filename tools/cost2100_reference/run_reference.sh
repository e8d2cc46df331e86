#!/usr/bin/env bash
# Run the Octave driver in chunks (so a long run can be stopped and resumed).
# Usage: run_reference.sh REFDIR OUTDIR [INDOOR_CHUNKS] [LOS_CHUNKS] [NLOS_CHUNKS]
#   indoor chunks hold 100 drops each, outdoor chunks 10 drops each.
# A chunk whose .mat exists is skipped; each chunk writes to a temporary name first.
set -euo pipefail
REFDIR=${1:?"REFDIR: the matlab folder of the reference"}
OUTDIR=${2:?"OUTDIR: where the chunks go"}
NIN=${3:-3}; NLOS=${4:-10}; NNLOS=${5:-10}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUTDIR"
run_chunk() {  # scenario drops seed
  local out="$OUTDIR/$1_seed$3.mat"
  [ -f "$out" ] && { echo "skip $out"; return; }
  nice -n 10 octave-cli --no-gui -q "$HERE/generate_reference.m" "$REFDIR" "$1" "$2" "$3" "$out.part.mat"
  mv "$out.part.mat" "$out"
}
for i in $(seq 1 "$NIN"); do run_chunk IndoorHall_5GHz 100 "$i"; done
# interleave LOS and NLOS so both scenarios grow together
for i in $(seq 1 "$(( NLOS > NNLOS ? NLOS : NNLOS ))"); do
  [ "$i" -le "$NLOS" ] && run_chunk SemiUrban_300MHz_LOS 10 $((1000 + i))
  [ "$i" -le "$NNLOS" ] && run_chunk SemiUrban_300MHz_NLOS 10 $((2000 + i))
done
echo done
