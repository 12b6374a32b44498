#!/usr/bin/env bash
# make demo: a short scripted session through the shell client, on the teacher,
# students and datasets built into distilld. Every step prints what it shows.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
DISTILLD=${DISTILLD:-$(type -P distilld || true)}
if [ -z "$DISTILLD" ] || ! [ -x "$(type -P -- "$DISTILLD" || true)" ]; then
  echo "demo: cannot find distilld: run \`make demo\`, or put distilld on PATH, or set DISTILLD=/path/to/distilld" >&2
  exit 1
fi
export DISTILLD
work=$(mktemp -d /tmp/distilld-demo.XXXXXX)
sock=$work/demo.sock
trap 'kill "$daemon" 2>/dev/null || true; rm -rf "$work"' EXIT

distill() { "$here/distill" --socket "$sock" "$@"; }
pretty() { if command -v python3 >/dev/null; then python3 -m json.tool; else cat; fi; }
step() { printf '\n\033[1m$ distill %s\033[0m\n' "$*"; distill "$@" | pretty; }
say() { printf '\n# %s\n' "$*"; }

"$DISTILLD" --listen "$sock" 2>"$work/daemon.log" &
daemon=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done

say "A shared daemon is listening on $sock. Everything below goes through the bash client."
step status
say "Load the built-in teacher: next-word distributions over {apple, banana, cherry} for six examples."
step teacher load demo builtin:demo
say "Score two students against it with forward KL. Example ex1 is the textbook case: A is closer (0.0268 vs 0.0452 nats)."
printf '\n\033[1m$ distill score --teacher demo --student A=builtin:demo-student-A --student B=builtin:demo-student-B --loss forward_kl\033[0m   (summarised)\n'
distill score --teacher demo --student A=builtin:demo-student-A --student B=builtin:demo-student-B --loss forward_kl --convention pytorch_kldiv_batchmean |
  python3 -c '
import json, sys
r = json.load(sys.stdin)
print("loss:", r["loss"]["name"], "reduction", r["loss"]["reduction"], "tau", r["loss"]["teacherTemperature"])
for s in r["students"]:
    per = ", ".join("%s %.4f" % (e["id"], e["loss"]) for e in s["perExample"])
    print("  %s: mean %.4f nats, top-1 agreement %.0f%%, worst %s; per example: %s" % (s["name"], s["loss"], 100 * s["top1Agreement"]["rate"], s["worst"][0]["id"], per))
    for c in s.get("conventions", []):
        print("     %s = %.4f: %s" % (c["name"], c["value"], c["explanation"]))
print("best:", r["best"], "by %.4f nats" % r["margin"]["absolute"])'

say "Why is A closer on ex1? Contributions, direction, temperature and gradient, with charts written to $work/charts."
distill explain --teacher demo --student A=builtin:demo-student-A --student B=builtin:demo-student-B \
  --example ex1 --temperatures 0.5,1,2,4,8 --svg "$work/charts" |
  python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["comparison"]); [print("-", s["name"] + ":", s["temperature"]["text"]) for s in r["students"]]; print("charts:", *r["chartFiles"], sep="\n  ")'
say "Load the paired dataset (full context for the teacher, simplified for the student) and what a student was trained on."
step dataset load pairs builtin:demo
step dataset load trained builtin:demo-inputs --kind inputs
step dataset examples pairs --limit 2
say "Did the student see the simplified inputs it will be deployed on? Are the pairs sound?"
distill diagnose --dataset pairs --inputs trained |
  python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["summary"]); [print(" ", d["code"], "(line", str(d["range"]["start"]["line"] + 1) + "):", d["message"]) for d in r["diagnostics"]]'
say "Stop the shared daemon."
step shutdown
wait "$daemon" 2>/dev/null || true
printf "\nDemo finished.\n"
