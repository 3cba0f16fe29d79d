#!/usr/bin/env bash
# Installs, from Debian's packages, the programs the tests talk to: the real
# peers nobody here wrote (Dovecot, maildrop, procmail, mb2md, mbsync, mutt;
# fetchmail and getmail6 for benches/fetch.sh; OpenSSH's server and client,
# Postfix (smtp-sink, smtp-source, and postfix and postqueue for the
# instance tests/postfix_deliver.rs runs), swaks, dnsmasq; stunnel4 for
# benches/tunnel.sh), plus what the tests need to drive them (python3,
# openssl, npm for the corpus, script for mutt).
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
  "mbsync:isync"
  "getmail:getmail6"
  "spamassassin:spamassassin"
  "sa-learn:spamassassin"
  "spamc:spamc"
  "spamd:spamd"
  "bogofilter:bogofilter"
  "/usr/sbin/sshd:openssh-server"
  "ssh:openssh-client"
  "ssh-keygen:openssh-client"
  "/usr/sbin/smtp-sink:postfix"
  "swaks:swaks"
  "stunnel4:stunnel4"
  "/usr/sbin/smtp-source:postfix"
  "/usr/sbin/postfix:postfix"
  "/usr/sbin/postqueue:postfix"
  "/usr/sbin/dnsmasq:dnsmasq-base"
  "mutt:mutt"
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
# Postfix: only its smtp-sink and smtp-source (and, for benches/serve_smtp.sh
# and tests/postfix_deliver.rs, instances of their own on loopback, each with
# its own configuration and queue); "No configuration" keeps the
# distribution's service unconfigured and stopped.
echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# But a system sshd or Postfix would listen on every address of this machine
# (port 22, port 25): stop them and keep them from starting at boot. The
# tests' own sshd and smtp-sink run on loopback only.
for pkg in openssh-server:ssh postfix:postfix; do
  if [[ " ${missing[*]} " == *" ${pkg%%:*} "* ]]; then
    service=${pkg#*:}
    if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
      $sudo systemctl disable --now "$service" >/dev/null 2>&1 || true
    else
      $sudo service "$service" stop >/dev/null 2>&1 || true
      $sudo update-rc.d "$service" disable >/dev/null 2>&1 || true
    fi
    if [ "$service" = postfix ]; then $sudo postfix stop >/dev/null 2>&1 || true; fi
  fi
done
