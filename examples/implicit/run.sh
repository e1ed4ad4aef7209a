#!/usr/bin/env bash
# The implicit instruction tuning experiment of docs/implicit.md, one step at a time, from the repository root:
#   bash examples/implicit/run.sh        (writes runs/implicit/; times every step into runs/implicit/times.txt)
set -euo pipefail
H="nice -n 10 node bin/heed.js"
R=runs/implicit
mkdir -p $R
t() { local s=$(date +%s); "$@"; echo "$(( $(date +%s) - s ))s  $*" >> $R/times.txt; }
t node --import tsx examples/implicit/prepare.ts ../shared/data/dolly_3k.jsonl --prompts 60
for arm in single-task response-only full; do t $H train examples/implicit/$arm.yaml --quiet; done
P=$R/data/prompts.jsonl
W="--prompts $P --judge proxy:ifs --variant C --max-tokens 64"
t $H winrate --a $R/single-task   --b models/base-dolly $W --out $R/wr-single-vs-base
t $H winrate --a $R/response-only --b $R/wr-single-vs-base/b.responses.jsonl $W --out $R/wr-ro-vs-base
t $H winrate --a $R/full          --b $R/wr-single-vs-base/b.responses.jsonl $W --out $R/wr-full-vs-base
t $H winrate --a $R/wr-single-vs-base/a.responses.jsonl --b $R/wr-full-vs-base/a.responses.jsonl $W --out $R/wr-single-vs-full
t $H winrate --a $R/wr-ro-vs-base/a.responses.jsonl     --b $R/wr-full-vs-base/a.responses.jsonl $W --out $R/wr-ro-vs-full
for m in models/base-dolly $R/single-task $R/response-only $R/full; do
  n=$(basename $m); t $H ifs --model $m --variant C --limit 60 --max-tokens 48 --json --out $R/ifs-$n.jsonl > $R/ifs-$n.json
done
