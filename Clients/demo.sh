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
model=${DISTILL_DEMO_MODEL:-$here/../.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf}
if [ -f "$model" ]; then
  say "Now a real model: SmolLM2-135M-Instruct (Q4_1 GGUF, from \`make models\`), run by distilld on the CPU."
  distill model load smol "$model" |
    python3 -c 'import json,sys; r=json.load(sys.stdin); print("%s: %s, %d layers, %d parameters, vocabulary %d, %s weights, %.0f MB resident, %.0f MB mapped" % (r["name"], r["architecture"], r["layers"], r["parameters"], r["vocab"], r["sourceDtype"], r["residentBytes"] / 1e6, r["mappedBytes"] / 1e6))'
  say "Context distillation, teacher-forced: the teacher reads each pair's full context and its target, the student (the same model) only the simplified context; forward KL at every target token."
  distill score --teacher-model smol --student-model student=smol --dataset pairs |
    python3 -c '
import json, sys
r = json.load(sys.stdin)
s = r["students"][0]
print("forward KL %.4f nats per target token over %d target tokens (%d examples)" % (s["loss"], r["prompt"]["targetTokens"], r["prompt"]["examples"]))
for w in s["worstTokens"][:2]:
    for t in w["tokens"][:2]:
        print("  %s, target %r: token %r costs %.3f nats (teacher log p %.2f, student %.2f)" % (w["id"], w["target"], t["text"], t["loss"], t["teacher"], t["student"]))'
  say "What the simplification takes away from the teacher (the context gap), judged from behaviour."
  distill diagnose --dataset pairs --behaviour smol --behaviour-teacher smol |
    python3 -c 'import json,sys; b=json.load(sys.stdin)["behaviour"]; print("context gap %.4f nats per target token; NLL of the targets %.3f (full context) vs %.3f (simplified)" % (b["contextGap"], b["nll"]["full"], b["nll"]["simplified"])); print(b["evidence"])'
  say "Where the loss sits along a text: per-token KL between the model reading two sentences, charted to $work/charts."
  distill call distill/explain "{\"teacher\": {\"model\": \"smol\", \"text\": \"The capital of France is Paris, a city on the Seine.\"}, \"students\": {\"italy\": {\"model\": \"smol\", \"text\": \"The capital of Italy is Paris, a city on the Seine.\"}}, \"example\": 0, \"position\": 5, \"chartsDir\": \"$work/charts\"}" |
    python3 -c 'import json,sys; r=json.load(sys.stdin); print(" ".join("%s[%.2f]" % (t["text"], t["losses"]["italy"]) for t in r["tokens"])); print("chart:", [f for f in r["chartFiles"] if "tokens-" in f][0])'
  say "Offline targets: the teacher's top-20 at every target token, to a safetensors file a training loop reads."
  distill export smol pairs "$work/targets.safetensors" --k 20 |
    python3 -c 'import json,sys; r=json.load(sys.stdin); print("%s: %d bytes, %d target tokens, k %d; tail mass outside the top 20: mean %.3f, max %.3f" % (r["path"], r["bytes"], r["targetTokens"], r["k"], r["tailMass"]["mean"], r["tailMass"]["max"]))'
  say "And what keeping only the top k would cost the KL on the two sentences above (the audit)."
  distill call distill/audit '{"teacher": {"model": "smol", "text": "The capital of France is Paris, a city on the Seine."}, "student": {"model": "smol", "text": "The capital of Italy is Paris, a city on the Seine."}, "ks": [1, 5, 20, 100], "bound": 0.01}' |
    python3 -c '
import json, sys
r = json.load(sys.stdin)
print("dense KL %.4f nats per position" % r["exact"])
for l in r["levels"]:
    p = l["policies"]
    print("  k=%-4d tail %.3f  renormalize %+.4f  tail bucket %+.4f  truncate %+.4f (%d positions negative)" % (l["k"], l["tailMass"]["mean"], p["renormalize"]["error"], p["tail_bucket"]["error"], p["truncate"]["error"], p["truncate"]["negativePositions"]))
print("smallest k within 0.01 nats:", r["smallestK"])'
else
  say "No model at $model: run \`make models\` for the part of the demo that runs SmolLM2."
fi
say "Stop the shared daemon."
step shutdown
wait "$daemon" 2>/dev/null || true
printf "\nDemo finished.\n"
