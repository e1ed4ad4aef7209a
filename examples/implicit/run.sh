#!/usr/bin/env bash
# The implicit instruction tuning experiment of docs/implicit.md, from the repository root:
#   bash examples/implicit/run.sh [prepare] [train] [judge] [ifs]      (no argument: all four, in this order)
# Writes runs/implicit/; every step's wall time goes to runs/implicit/times.txt. One run at a time, under nice.
set -euo pipefail
H="nice -n 10 node bin/heed.js"
R=runs/implicit
P=$R/data/prompts.jsonl
mkdir -p $R
t() { local s=$(date +%s); "$@"; echo "$(( $(date +%s) - s ))s  $*" >> $R/times.txt; }
phases=${*:-prepare train judge ifs}
for ph in $phases; do case $ph in
prepare) t node --import tsx examples/implicit/prepare.ts ../shared/data/dolly_3k.jsonl --prompts 60 ;;
train) for arm in single-task response-only full; do t $H train examples/implicit/$arm.yaml --quiet; done ;;
judge)
  # proxy:ifs = the offline proxy judge (IFS classifier), labelled PROXY in every output; both orders per pair
  W="--prompts $P --judge proxy:ifs --variant C --max-tokens 64"
  t $H winrate --a $R/single-task   --b models/base-dolly $W --out $R/wr-single-vs-base
  t $H winrate --a $R/response-only --b $R/wr-single-vs-base/b.responses.jsonl $W --out $R/wr-ro-vs-base
  t $H winrate --a $R/full          --b $R/wr-single-vs-base/b.responses.jsonl $W --out $R/wr-full-vs-base
  t $H winrate --a $R/wr-single-vs-base/a.responses.jsonl --b $R/wr-full-vs-base/a.responses.jsonl $W --out $R/wr-single-vs-full
  t $H winrate --a $R/wr-ro-vs-base/a.responses.jsonl     --b $R/wr-full-vs-base/a.responses.jsonl $W --out $R/wr-ro-vs-full ;;
ifs)
  # IFS on the IFS prompts whose source row no arm trained on (runs/implicit/data/ifs-prompts.jsonl), variant C
  for m in models/base-dolly $R/single-task/final $R/response-only/final $R/full/final; do
    n=$(basename ${m%/final}); t $H ifs --model $m --prompts $R/data/ifs-prompts.jsonl --variant C --max-tokens 48 --json --out $R/ifs-$n.jsonl > $R/ifs-$n.json
  done ;;
*) echo "unknown phase $ph (prepare, train, judge, ifs)" >&2; exit 2 ;;
esac; done
