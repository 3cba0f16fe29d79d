#!/usr/bin/env bash
# Installs, from Debian's packages, the programs the tests talk to: the real
# peers nobody here wrote (Dovecot, maildrop, procmail, mb2md; fetchmail and
# getmail6 for benches/fetch.sh), plus what the tests need to drive them
# (python3, openssl, npm for the corpus).
# Does nothing when everything is there already. Needs root (or sudo).
set -euo pipefail

# command -> Debian package
peers=(
  "dovecot:dovecot-imapd"
  "doveadm:dovecot-core"
  "/usr/lib/dovecot/imap:dovecot-imapd"
  "/usr/lib/dovecot/pop3:dovecot-pop3d"
  "/usr/lib/dovecot/dovecot-lda:dovecot-lmtpd"
  "maildrop:maildrop"
  "procmail:procmail"
  "mb2md:mb2md"
  "python3:python3"
  "openssl:openssl"
  "npm:npm"
  "strace:strace"
  "setpriv:util-linux"
  "script:bsdutils"
  "fetchmail:fetchmail"
  "getmail:getmail6"
  "spamassassin:spamassassin"
  "sa-learn:spamassassin"
  "spamc:spamc"
  "spamd:spamd"
  "bogofilter:bogofilter"
)

missing=()
for entry in "${peers[@]}"; do
  cmd=${entry%%:*} pkg=${entry#*:}
  if [[ $cmd == /* ]]; then [ -x "$cmd" ] && continue; else command -v "$cmd" >/dev/null && continue; fi
  [[ " ${missing[*]:-} " == *" $pkg "* ]] || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-peers: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# Debian starts services on install; the tests start their own on loopback
# high ports, so a system Dovecot is neither needed nor in the way.
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
