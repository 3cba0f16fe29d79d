#!/usr/bin/env bash
# Spam filter accuracy and speed on the SpamAssassin public corpus, in one
# run: train on easy-ham-1 + spam-1, measure on easy-ham-2 + hard-ham-1 +
# spam-2 (../shared/corpus.md), for
#
#   ownmail       spamcheck train; spamcheck --bulk (one process for all);
#                 `ownmail spamcheck --exit-code` per message (one process
#                 each, as a procmail or Postfix pipe runs it)
#   bogofilter    -s/-n training with the same split; -b (bulk); one
#                 `bogofilter -e` per message; spam = "Spam" (unsure is ham)
#   SpamAssassin  sa-learn on the same split into a fresh Bayes database;
#                 spamd on 127.0.0.1 (-L: no network tests), spamc per
#                 message (SpamAssassin has no faster mode); as root, both
#                 run as nobody (sa-learn and spamd refuse or misbehave as
#                 root) with HOME in the scratch directory
#
# and prints, for each: false-positive rate (ham called spam), false-negative
# rate (spam missed), messages per second in bulk and per process, training
# time, and ratios ownmail/peer.
#
#   benches/spamcheck.sh              # needs the corpus (scripts/corpus.sh)
#   SKIP_SA=1 benches/spamcheck.sh    # without SpamAssassin (3 minutes less)
#
# Debian packages: spamassassin, spamc, bogofilter.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
data=${CORPUS:-$root/.cache/corpus/package/data}
[ -d "$data/spam-2" ] || { echo "spamcheck.sh: no corpus in $data (scripts/corpus.sh)" >&2; exit 1; }
for c in bogofilter spamd spamc sa-learn; do
  [ -n "${SKIP_SA:-}" ] && [[ $c != bogofilter ]] && continue
  command -v $c >/dev/null || { echo "spamcheck.sh: $c not found (apt-get install spamassassin spamc bogofilter)" >&2; exit 1; }
done
cargo build --release --quiet
om=$root/target/release/ownmail
work=$(mktemp -d)
trap 'kill $(cat $work/spamd.pid 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT

ls "$data"/easy-ham-2/*.txt "$data"/hard-ham-1/*.txt > "$work/ham.list"
ls "$data"/spam-2/*.txt > "$work/spam.list"
cat "$work/ham.list" "$work/spam.list" > "$work/all.list"
nham=$(wc -l < "$work/ham.list"); nspam=$(wc -l < "$work/spam.list"); nall=$((nham + nspam))

now() { date +%s.%N; }
rate() { echo "$1 $2 $3" | awk '{printf "%.0f", $1 / ($3 - $2)}'; }
secs() { echo "$1 $2" | awk '{printf "%.2f", $2 - $1}'; }
# fp/fn from a file of "PATH spam|ham" lines
score() {
  awk -v nh="$nham" -v ns="$nspam" '
    $1 ~ /-ham-/ && $2 == "spam" { fp++ }
    $1 ~ /spam-2/ && $2 == "ham" { fn++ }
    END { printf "%.2f %.2f %d %d\n", 100 * fp / nh, 100 * fn / ns, fp, fn }' "$1"
}

# --- ownmail ---
t0=$(now)
"$om" spamcheck --db "$work/om.db" train --spam "$data/spam-1" --ham "$data/easy-ham-1" > "$work/om.train"
t1=$(now); om_train=$(secs $t0 $t1)
t0=$(now)
"$om" spamcheck --db "$work/om.db" --bulk < "$work/all.list" | awk '{print $1, $3}' > "$work/om.bulk"
t1=$(now); om_bulk=$(rate $nall $t0 $t1)
t0=$(now)
while read -r f; do
  if "$om" spamcheck --db "$work/om.db" --exit-code --score-only "$f" >/dev/null; then echo "$f ham"; else echo "$f spam"; fi
done < "$work/all.list" > "$work/om.proc"
t1=$(now); om_proc=$(rate $nall $t0 $t1)
cmp -s <(sort "$work/om.bulk") <(sort "$work/om.proc") || echo "spamcheck.sh: ownmail bulk and per-process verdicts differ" >&2
read -r om_fp om_fn om_fpn om_fnn < <(score "$work/om.bulk")

# --- bogofilter ---
bf="bogofilter -d $work/bogo"
mkdir -p "$work/bogo"
t0=$(now)
ls "$data"/spam-1/*.txt | $bf -s -b
ls "$data"/easy-ham-1/*.txt | $bf -n -b
t1=$(now); bf_train=$(secs $t0 $t1)
t0=$(now)
# -b -t prints one "S|H|U score" line per file name, in order.
$bf -b -t < "$work/all.list" | paste -d' ' "$work/all.list" - | awk '{print $1, ($2 == "S" ? "spam" : "ham")}' > "$work/bf.bulk"
t1=$(now); bf_bulk=$(rate $nall $t0 $t1)
t0=$(now)
while read -r f; do
  set +e; $bf -e < "$f"; rc=$?; set -e
  if [ $rc -eq 0 ]; then echo "$f spam"; else echo "$f ham"; fi
done < "$work/all.list" > "$work/bf.proc"
t1=$(now); bf_proc=$(rate $nall $t0 $t1)
read -r bf_fp bf_fn bf_fpn bf_fnn < <(score "$work/bf.bulk")

# --- SpamAssassin ---
if [ -z "${SKIP_SA:-}" ]; then
  mkdir -p "$work/sa"
  # --siteconfigpath replaces /etc/spamassassin, whose *.pre files load the
  # plugins: without them there is no Bayes plugin and sa-learn fails with
  # "the Bayes learn function returned an error".
  cp /etc/spamassassin/*.pre "$work/sa/"
  cat > "$work/sa/local.cf" <<CF
use_bayes 1
bayes_auto_learn 0
bayes_path $work/sa/bayes
report_safe 0
CF
  mkdir -p "$work/home"
  chmod -R a+rwX "$work"; chmod a+x "$(dirname "$work")"
  user=(); as=(env HOME="$work/home")
  if [ "$(id -u)" -eq 0 ]; then
    user=(-u nobody); as=(runuser -u nobody -- env HOME="$work/home")
    chown -R nobody "$work/sa" "$work/home"
  fi
  t0=$(now)
  # -L: local tests only (no network).
  "${as[@]}" sa-learn --siteconfigpath "$work/sa" -L --spam "$data"/spam-1/*.txt >/dev/null
  "${as[@]}" sa-learn --siteconfigpath "$work/sa" -L --ham "$data"/easy-ham-1/*.txt >/dev/null
  t1=$(now); sa_train=$(secs $t0 $t1)
  "${as[@]}" sa-learn --siteconfigpath "$work/sa" --dump magic | grep -E "nspam|nham" >&2
  port=$((20000 + RANDOM % 20000))
  spamd -L -i 127.0.0.1 -p $port --siteconfigpath "$work/sa" "${user[@]}" -x -r "$work/spamd.pid" -m 2 -d
  for _ in $(seq 100); do spamc -d 127.0.0.1 -p $port -c < /dev/null >/dev/null 2>&1 && break || sleep 0.2; [ -s "$work/spamd.pid" ] && spamc -d 127.0.0.1 -p $port -K >/dev/null 2>&1 && break; done
  t0=$(now)
  while read -r f; do
    set +e; spamc -d 127.0.0.1 -p $port -c < "$f" >/dev/null; rc=$?; set -e
    if [ $rc -eq 1 ]; then echo "$f spam"; else echo "$f ham"; fi
  done < "$work/all.list" > "$work/sa.proc"
  t1=$(now); sa_proc=$(rate $nall $t0 $t1)
  read -r sa_fp sa_fn sa_fpn sa_fnn < <(score "$work/sa.proc")
fi

ratio() { echo "$1 $2" | awk '{ if ($2 > 0) printf "%.1fx", $1 / $2; else print "-" }'; }
printf '\nmeasure split: %d ham (easy-ham-2 + hard-ham-1), %d spam (spam-2); trained on easy-ham-1 + spam-1\n' $nham $nspam
printf '%-13s %8s %8s %10s %10s %9s\n' tool "FP %" "FN %" "bulk/s" "proc/s" "train s"
printf '%-13s %8s %8s %10s %10s %9s\n' ownmail "$om_fp" "$om_fn" "$om_bulk" "$om_proc" "$om_train"
printf '%-13s %8s %8s %10s %10s %9s\n' bogofilter "$bf_fp" "$bf_fn" "$bf_bulk" "$bf_proc" "$bf_train"
[ -z "${SKIP_SA:-}" ] && printf '%-13s %8s %8s %10s %10s %9s\n' SpamAssassin "$sa_fp" "$sa_fn" "(spamd)" "$sa_proc" "$sa_train"
printf '\nownmail/bogofilter: bulk %s, per process %s\n' "$(ratio $om_bulk $bf_bulk)" "$(ratio $om_proc $bf_proc)"
[ -z "${SKIP_SA:-}" ] && printf 'ownmail/SpamAssassin: per process %s\n' "$(ratio $om_proc $sa_proc)"
printf 'ownmail errors: %d of %d ham called spam, %d of %d spam missed\n' $om_fpn $nham $om_fnn $nspam
printf 'ownmail database: %s\n' "$(cat "$work/om.train")"
