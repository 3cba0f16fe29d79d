# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_ownmail_global_optspecs
    string join \n c/config= v/verbose q/quiet h/help V/version
end

function __fish_ownmail_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_ownmail_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_ownmail_using_subcommand
    set -l cmd (__fish_ownmail_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c ownmail -n "__fish_ownmail_needs_command" -s c -l config -d 'The configuration file (default: $OWNMAIL_CONFIG, else the first that exists of ./ownmail.yaml, $XDG_CONFIG_HOME/ownmail/ownmail.yaml, /etc/ownmail/ownmail.yaml)' -r -F
complete -c ownmail -n "__fish_ownmail_needs_command" -s v -l verbose -d 'Log more (-v: info, -vv: debug, -vvv: trace)'
complete -c ownmail -n "__fish_ownmail_needs_command" -s q -l quiet -d 'Log less (-q: errors only, -qq: nothing)'
complete -c ownmail -n "__fish_ownmail_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ownmail -n "__fish_ownmail_needs_command" -s V -l version -d 'Print version'
complete -c ownmail -n "__fish_ownmail_needs_command" -f -a "deliver" -d 'Deliver one message from standard input into a Maildir folder'
complete -c ownmail -n "__fish_ownmail_needs_command" -f -a "user" -d 'Manage users: add, change passwords, delete, list'
complete -c ownmail -n "__fish_ownmail_needs_command" -f -a "check-config" -d 'Check the configuration and print it resolved'
complete -c ownmail -n "__fish_ownmail_needs_command" -f -a "convert-mbox" -d 'Convert mbox files and trees into Maildir folders, once'
complete -c ownmail -n "__fish_ownmail_needs_command" -f -a "fetch" -d 'Fetch mail from remote POP3 and IMAP accounts into local mailboxes'
complete -c ownmail -n "__fish_ownmail_needs_command" -f -a "spamcheck" -d 'Classify a message as spam or ham, or train the filter'
complete -c ownmail -n "__fish_ownmail_needs_command" -f -a "tunnel" -d 'Reach your mail server from any network, encrypted (ssh or TLS)'
complete -c ownmail -n "__fish_ownmail_needs_command" -f -a "serve-imap" -d 'Serve the users\' Maildirs over IMAP'
complete -c ownmail -n "__fish_ownmail_needs_command" -f -a "serve" -d 'Run every configured server in one process (IMAP, and SMTP when configured)'
complete -c ownmail -n "__fish_ownmail_needs_command" -f -a "serve-smtp" -d 'Receive mail for our domains and send our users\' mail (SMTP server)'
complete -c ownmail -n "__fish_ownmail_needs_command" -f -a "queue" -d 'Look at and act on the outbound queue'
complete -c ownmail -n "__fish_ownmail_needs_command" -f -a "sendmail" -d 'Queue a message from standard input, as sendmail does'
complete -c ownmail -n "__fish_ownmail_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ownmail -n "__fish_ownmail_using_subcommand deliver" -s u -l user -d 'Deliver to this user\'s Maildir (<data_dir>/mail/NAME, from the configuration)' -r
complete -c ownmail -n "__fish_ownmail_using_subcommand deliver" -s m -l maildir -d 'Deliver to the Maildir at DIR (created if missing; no configuration needed)' -r -F
complete -c ownmail -n "__fish_ownmail_using_subcommand deliver" -s f -l folder -d 'The folder, `/` between levels (e.g. Lists/rust)' -r
complete -c ownmail -n "__fish_ownmail_using_subcommand deliver" -s F -l from -d 'The envelope sender, for Return-Path: (default: the `From ` line, else $SENDER)' -r
complete -c ownmail -n "__fish_ownmail_using_subcommand deliver" -s a -l recipient -d 'The final recipient, for Delivered-To: (default: $RECIPIENT, else USER@first domain)' -r
complete -c ownmail -n "__fish_ownmail_using_subcommand deliver" -l flags -d 'IMAP flags and keywords to set, separated by spaces or commas (e.g. \'\\Seen $Label1\')' -r
complete -c ownmail -n "__fish_ownmail_using_subcommand deliver" -s c -l config -d 'The configuration file (default: $OWNMAIL_CONFIG, else the first that exists of ./ownmail.yaml, $XDG_CONFIG_HOME/ownmail/ownmail.yaml, /etc/ownmail/ownmail.yaml)' -r -F
complete -c ownmail -n "__fish_ownmail_using_subcommand deliver" -l create -d 'Create the folder if it does not exist'
complete -c ownmail -n "__fish_ownmail_using_subcommand deliver" -s v -l verbose -d 'Log more (-v: info, -vv: debug, -vvv: trace)'
complete -c ownmail -n "__fish_ownmail_using_subcommand deliver" -s q -l quiet -d 'Log less (-q: errors only, -qq: nothing)'
complete -c ownmail -n "__fish_ownmail_using_subcommand deliver" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ownmail -n "__fish_ownmail_using_subcommand deliver" -s V -l version -d 'Print version'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and not __fish_seen_subcommand_from add passwd del list help" -s c -l config -d 'The configuration file (default: $OWNMAIL_CONFIG, else the first that exists of ./ownmail.yaml, $XDG_CONFIG_HOME/ownmail/ownmail.yaml, /etc/ownmail/ownmail.yaml)' -r -F
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and not __fish_seen_subcommand_from add passwd del list help" -s v -l verbose -d 'Log more (-v: info, -vv: debug, -vvv: trace)'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and not __fish_seen_subcommand_from add passwd del list help" -s q -l quiet -d 'Log less (-q: errors only, -qq: nothing)'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and not __fish_seen_subcommand_from add passwd del list help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and not __fish_seen_subcommand_from add passwd del list help" -s V -l version -d 'Print version'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and not __fish_seen_subcommand_from add passwd del list help" -f -a "add" -d 'Add a user and create their Maildir (INBOX, Drafts, Sent, Junk, Trash, Archive)'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and not __fish_seen_subcommand_from add passwd del list help" -f -a "passwd" -d 'Change a user\'s password'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and not __fish_seen_subcommand_from add passwd del list help" -f -a "del" -d 'Delete a user (their mail is kept unless --purge)'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and not __fish_seen_subcommand_from add passwd del list help" -f -a "list" -d 'List the users, and any whose line cannot be used'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and not __fish_seen_subcommand_from add passwd del list help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from add" -s c -l config -d 'The configuration file (default: $OWNMAIL_CONFIG, else the first that exists of ./ownmail.yaml, $XDG_CONFIG_HOME/ownmail/ownmail.yaml, /etc/ownmail/ownmail.yaml)' -r -F
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from add" -l password-stdin -d 'Read the password as one line from standard input instead of prompting'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from add" -s v -l verbose -d 'Log more (-v: info, -vv: debug, -vvv: trace)'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from add" -s q -l quiet -d 'Log less (-q: errors only, -qq: nothing)'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from add" -s V -l version -d 'Print version'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from passwd" -s c -l config -d 'The configuration file (default: $OWNMAIL_CONFIG, else the first that exists of ./ownmail.yaml, $XDG_CONFIG_HOME/ownmail/ownmail.yaml, /etc/ownmail/ownmail.yaml)' -r -F
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from passwd" -l password-stdin -d 'Read the password as one line from standard input instead of prompting'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from passwd" -s v -l verbose -d 'Log more (-v: info, -vv: debug, -vvv: trace)'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from passwd" -s q -l quiet -d 'Log less (-q: errors only, -qq: nothing)'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from passwd" -s h -l help -d 'Print help'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from passwd" -s V -l version -d 'Print version'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from del" -s c -l config -d 'The configuration file (default: $OWNMAIL_CONFIG, else the first that exists of ./ownmail.yaml, $XDG_CONFIG_HOME/ownmail/ownmail.yaml, /etc/ownmail/ownmail.yaml)' -r -F
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from del" -l purge -d 'Also delete the user\'s Maildir, irrecoverably'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from del" -s v -l verbose -d 'Log more (-v: info, -vv: debug, -vvv: trace)'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from del" -s q -l quiet -d 'Log less (-q: errors only, -qq: nothing)'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from del" -s h -l help -d 'Print help'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from del" -s V -l version -d 'Print version'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from list" -s c -l config -d 'The configuration file (default: $OWNMAIL_CONFIG, else the first that exists of ./ownmail.yaml, $XDG_CONFIG_HOME/ownmail/ownmail.yaml, /etc/ownmail/ownmail.yaml)' -r -F
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from list" -s v -l verbose -d 'Log more (-v: info, -vv: debug, -vvv: trace)'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Log less (-q: errors only, -qq: nothing)'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "add" -d 'Add a user and create their Maildir (INBOX, Drafts, Sent, Junk, Trash, Archive)'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "passwd" -d 'Change a user\'s password'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "del" -d 'Delete a user (their mail is kept unless --purge)'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "list" -d 'List the users, and any whose line cannot be used'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ownmail -n "__fish_ownmail_using_subcommand check-config" -s c -l config -d 'The configuration file (default: $OWNMAIL_CONFIG, else the first that exists of ./ownmail.yaml, $XDG_CONFIG_HOME/ownmail/ownmail.yaml, /etc/ownmail/ownmail.yaml)' -r -F
complete -c ownmail -n "__fish_ownmail_using_subcommand check-config" -s v -l verbose -d 'Log more (-v: info, -vv: debug, -vvv: trace)'
complete -c ownmail -n "__fish_ownmail_using_subcommand check-config" -s q -l quiet -d 'Log less (-q: errors only, -qq: nothing)'
complete -c ownmail -n "__fish_ownmail_using_subcommand check-config" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ownmail -n "__fish_ownmail_using_subcommand check-config" -s V -l version -d 'Print version'
complete -c ownmail -n "__fish_ownmail_using_subcommand convert-mbox" -s u -l user -d 'Convert into this user\'s Maildir (<data_dir>/mail/NAME, from the configuration)' -r
complete -c ownmail -n "__fish_ownmail_using_subcommand convert-mbox" -s m -l maildir -d 'Convert into the Maildir at DIR (created if missing; no configuration needed)' -r -F
complete -c ownmail -n "__fish_ownmail_using_subcommand convert-mbox" -s f -l folder -d 'The folder a single mbox goes into, or a tree goes below (e.g. Old/2019)' -r
complete -c ownmail -n "__fish_ownmail_using_subcommand convert-mbox" -l format -d 'The mbox variant (auto: Content-Length when it fits, else mboxrd)' -r -f -a "auto\t''
mboxo\t''
mboxrd\t''
mboxcl\t''
mboxcl2\t''"
complete -c ownmail -n "__fish_ownmail_using_subcommand convert-mbox" -l threads -d 'Reader threads, and twice as many writer threads, 1 to 64 (default: one reader and two writers per core)' -r
complete -c ownmail -n "__fish_ownmail_using_subcommand convert-mbox" -s c -l config -d 'The configuration file (default: $OWNMAIL_CONFIG, else the first that exists of ./ownmail.yaml, $XDG_CONFIG_HOME/ownmail/ownmail.yaml, /etc/ownmail/ownmail.yaml)' -r -F
complete -c ownmail -n "__fish_ownmail_using_subcommand convert-mbox" -l dry-run -d 'Read everything and report, but write nothing'
complete -c ownmail -n "__fish_ownmail_using_subcommand convert-mbox" -l keep-headers -d 'Keep Status:, X-Status:, X-Keywords: and the like in the messages'
complete -c ownmail -n "__fish_ownmail_using_subcommand convert-mbox" -l strict -d 'Stop at the first damaged message or file that is not an mbox'
complete -c ownmail -n "__fish_ownmail_using_subcommand convert-mbox" -l json -d 'Print the summary as JSON, also when the run fails or is interrupted (then with an "error" field)'
complete -c ownmail -n "__fish_ownmail_using_subcommand convert-mbox" -s v -l verbose -d 'Log more (-v: info, -vv: debug, -vvv: trace)'
complete -c ownmail -n "__fish_ownmail_using_subcommand convert-mbox" -s q -l quiet -d 'Log less (-q: errors only, -qq: nothing)'
complete -c ownmail -n "__fish_ownmail_using_subcommand convert-mbox" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ownmail -n "__fish_ownmail_using_subcommand convert-mbox" -s V -l version -d 'Print version'
complete -c ownmail -n "__fish_ownmail_using_subcommand fetch" -s a -l account -d 'Fetch only this account (repeat for several; default: all)' -r
complete -c ownmail -n "__fish_ownmail_using_subcommand fetch" -s c -l config -d 'The configuration file (default: $OWNMAIL_CONFIG, else the first that exists of ./ownmail.yaml, $XDG_CONFIG_HOME/ownmail/ownmail.yaml, /etc/ownmail/ownmail.yaml)' -r -F
complete -c ownmail -n "__fish_ownmail_using_subcommand fetch" -s k -l keep -d 'Leave every message on the server this time, whatever keep says'
complete -c ownmail -n "__fish_ownmail_using_subcommand fetch" -l all -d 'Fetch every message again, including ones fetched before'
complete -c ownmail -n "__fish_ownmail_using_subcommand fetch" -l idle -d 'Keep running: IMAP accounts wait with IDLE, POP3 accounts are polled every 5 minutes'
complete -c ownmail -n "__fish_ownmail_using_subcommand fetch" -l json -d 'Print what was done as JSON on standard output (always, even with -q)'
complete -c ownmail -n "__fish_ownmail_using_subcommand fetch" -s v -l verbose -d 'Log more (-v: info, -vv: debug, -vvv: trace)'
complete -c ownmail -n "__fish_ownmail_using_subcommand fetch" -s q -l quiet -d 'Log less (-q: errors only, -qq: nothing)'
complete -c ownmail -n "__fish_ownmail_using_subcommand fetch" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ownmail -n "__fish_ownmail_using_subcommand fetch" -s V -l version -d 'Print version'
complete -c ownmail -n "__fish_ownmail_using_subcommand spamcheck; and not __fish_seen_subcommand_from train help" -s u -l user -d 'Also use this user\'s database (from the configuration)' -r
complete -c ownmail -n "__fish_ownmail_using_subcommand spamcheck; and not __fish_seen_subcommand_from train help" -l db -d 'Use this database file instead of the configuration\'s site database' -r -F
complete -c ownmail -n "__fish_ownmail_using_subcommand spamcheck; and not __fish_seen_subcommand_from train help" -l rules -d 'Score overrides (default: spam.rules from the configuration)' -r -F
complete -c ownmail -n "__fish_ownmail_using_subcommand spamcheck; and not __fish_seen_subcommand_from train help" -s c -l config -d 'The configuration file (default: $OWNMAIL_CONFIG, else the first that exists of ./ownmail.yaml, $XDG_CONFIG_HOME/ownmail/ownmail.yaml, /etc/ownmail/ownmail.yaml)' -r -F
complete -c ownmail -n "__fish_ownmail_using_subcommand spamcheck; and not __fish_seen_subcommand_from train help" -l report -d 'Print each rule hit with its score instead of the message'
complete -c ownmail -n "__fish_ownmail_using_subcommand spamcheck; and not __fish_seen_subcommand_from train help" -l exit-code -d 'Exit 1 for spam, 0 for ham'
complete -c ownmail -n "__fish_ownmail_using_subcommand spamcheck; and not __fish_seen_subcommand_from train help" -l score-only -d 'Print only the score instead of the message'
complete -c ownmail -n "__fish_ownmail_using_subcommand spamcheck; and not __fish_seen_subcommand_from train help" -l list-rules -d 'List the rules with their scores and descriptions, then exit'
complete -c ownmail -n "__fish_ownmail_using_subcommand spamcheck; and not __fish_seen_subcommand_from train help" -l bulk -d 'Read file names from standard input, one per line, and print `FILE SCORE spam|ham TESTS` for each'
complete -c ownmail -n "__fish_ownmail_using_subcommand spamcheck; and not __fish_seen_subcommand_from train help" -s v -l verbose -d 'Log more (-v: info, -vv: debug, -vvv: trace)'
complete -c ownmail -n "__fish_ownmail_using_subcommand spamcheck; and not __fish_seen_subcommand_from train help" -s q -l quiet -d 'Log less (-q: errors only, -qq: nothing)'
complete -c ownmail -n "__fish_ownmail_using_subcommand spamcheck; and not __fish_seen_subcommand_from train help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ownmail -n "__fish_ownmail_using_subcommand spamcheck; and not __fish_seen_subcommand_from train help" -s V -l version -d 'Print version'
complete -c ownmail -n "__fish_ownmail_using_subcommand spamcheck; and not __fish_seen_subcommand_from train help" -a "train" -d 'Learn messages as spam or ham (Maildirs, folders of files, mbox files, single files)'
complete -c ownmail -n "__fish_ownmail_using_subcommand spamcheck; and not __fish_seen_subcommand_from train help" -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ownmail -n "__fish_ownmail_using_subcommand spamcheck; and __fish_seen_subcommand_from train" -l spam -d 'Spam to learn: a Maildir, a folder of message files, an mbox file or a message file' -r -F
complete -c ownmail -n "__fish_ownmail_using_subcommand spamcheck; and __fish_seen_subcommand_from train" -l ham -d 'Ham (good mail) to learn, in the same forms' -r -F
complete -c ownmail -n "__fish_ownmail_using_subcommand spamcheck; and __fish_seen_subcommand_from train" -s u -l user -d 'Also use this user\'s database (from the configuration)' -r
complete -c ownmail -n "__fish_ownmail_using_subcommand spamcheck; and __fish_seen_subcommand_from train" -l db -d 'Use this database file instead of the configuration\'s site database' -r -F
complete -c ownmail -n "__fish_ownmail_using_subcommand spamcheck; and __fish_seen_subcommand_from train" -s c -l config -d 'The configuration file (default: $OWNMAIL_CONFIG, else the first that exists of ./ownmail.yaml, $XDG_CONFIG_HOME/ownmail/ownmail.yaml, /etc/ownmail/ownmail.yaml)' -r -F
complete -c ownmail -n "__fish_ownmail_using_subcommand spamcheck; and __fish_seen_subcommand_from train" -l forget -d 'Unlearn these messages instead (undo an earlier training)'
complete -c ownmail -n "__fish_ownmail_using_subcommand spamcheck; and __fish_seen_subcommand_from train" -s v -l verbose -d 'Log more (-v: info, -vv: debug, -vvv: trace)'
complete -c ownmail -n "__fish_ownmail_using_subcommand spamcheck; and __fish_seen_subcommand_from train" -s q -l quiet -d 'Log less (-q: errors only, -qq: nothing)'
complete -c ownmail -n "__fish_ownmail_using_subcommand spamcheck; and __fish_seen_subcommand_from train" -s h -l help -d 'Print help'
complete -c ownmail -n "__fish_ownmail_using_subcommand spamcheck; and __fish_seen_subcommand_from train" -s V -l version -d 'Print version'
complete -c ownmail -n "__fish_ownmail_using_subcommand spamcheck; and __fish_seen_subcommand_from help" -f -a "train" -d 'Learn messages as spam or ham (Maildirs, folders of files, mbox files, single files)'
complete -c ownmail -n "__fish_ownmail_using_subcommand spamcheck; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ownmail -n "__fish_ownmail_using_subcommand tunnel; and not __fish_seen_subcommand_from ssh tls fingerprint help" -s c -l config -d 'The configuration file (default: $OWNMAIL_CONFIG, else the first that exists of ./ownmail.yaml, $XDG_CONFIG_HOME/ownmail/ownmail.yaml, /etc/ownmail/ownmail.yaml)' -r -F
complete -c ownmail -n "__fish_ownmail_using_subcommand tunnel; and not __fish_seen_subcommand_from ssh tls fingerprint help" -s v -l verbose -d 'Log more (-v: info, -vv: debug, -vvv: trace)'
complete -c ownmail -n "__fish_ownmail_using_subcommand tunnel; and not __fish_seen_subcommand_from ssh tls fingerprint help" -s q -l quiet -d 'Log less (-q: errors only, -qq: nothing)'
complete -c ownmail -n "__fish_ownmail_using_subcommand tunnel; and not __fish_seen_subcommand_from ssh tls fingerprint help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ownmail -n "__fish_ownmail_using_subcommand tunnel; and not __fish_seen_subcommand_from ssh tls fingerprint help" -s V -l version -d 'Print version'
complete -c ownmail -n "__fish_ownmail_using_subcommand tunnel; and not __fish_seen_subcommand_from ssh tls fingerprint help" -f -a "ssh" -d 'Forward local SMTP and IMAP ports to your server through ssh, supervised'
complete -c ownmail -n "__fish_ownmail_using_subcommand tunnel; and not __fish_seen_subcommand_from ssh tls fingerprint help" -f -a "tls" -d 'Carry a local plaintext port over TLS to a server, or wrap a local service in TLS'
complete -c ownmail -n "__fish_ownmail_using_subcommand tunnel; and not __fish_seen_subcommand_from ssh tls fingerprint help" -f -a "fingerprint" -d 'Print the fingerprint of a TLS server\'s certificate, to pin with --pin'
complete -c ownmail -n "__fish_ownmail_using_subcommand tunnel; and not __fish_seen_subcommand_from ssh tls fingerprint help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ownmail -n "__fish_ownmail_using_subcommand tunnel; and __fish_seen_subcommand_from ssh" -l smtp -d 'Forward for SMTP, checked by its 220 greeting (`none`: no SMTP forward)' -r
complete -c ownmail -n "__fish_ownmail_using_subcommand tunnel; and __fish_seen_subcommand_from ssh" -l imap -d 'Forward for IMAP, checked by its `* OK` greeting (`none`: no IMAP forward)' -r
complete -c ownmail -n "__fish_ownmail_using_subcommand tunnel; and __fish_seen_subcommand_from ssh" -l forward -d 'Another forward (repeatable), only checked to be listening' -r
complete -c ownmail -n "__fish_ownmail_using_subcommand tunnel; and __fish_seen_subcommand_from ssh" -l ssh-option -d 'An ssh option, passed as `-o OPT` (repeatable), e.g. Port=2222 or IdentityFile=~/.ssh/mail' -r
complete -c ownmail -n "__fish_ownmail_using_subcommand tunnel; and __fish_seen_subcommand_from ssh" -l check-interval -d 'Seconds between health checks of the forwards' -r
complete -c ownmail -n "__fish_ownmail_using_subcommand tunnel; and __fish_seen_subcommand_from ssh" -l check-timeout -d 'Seconds a forward has to show its server\'s greeting' -r
complete -c ownmail -n "__fish_ownmail_using_subcommand tunnel; and __fish_seen_subcommand_from ssh" -s c -l config -d 'The configuration file (default: $OWNMAIL_CONFIG, else the first that exists of ./ownmail.yaml, $XDG_CONFIG_HOME/ownmail/ownmail.yaml, /etc/ownmail/ownmail.yaml)' -r -F
complete -c ownmail -n "__fish_ownmail_using_subcommand tunnel; and __fish_seen_subcommand_from ssh" -s v -l verbose -d 'Log more (-v: info, -vv: debug, -vvv: trace)'
complete -c ownmail -n "__fish_ownmail_using_subcommand tunnel; and __fish_seen_subcommand_from ssh" -s q -l quiet -d 'Log less (-q: errors only, -qq: nothing)'
complete -c ownmail -n "__fish_ownmail_using_subcommand tunnel; and __fish_seen_subcommand_from ssh" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ownmail -n "__fish_ownmail_using_subcommand tunnel; and __fish_seen_subcommand_from ssh" -s V -l version -d 'Print version'
complete -c ownmail -n "__fish_ownmail_using_subcommand tunnel; and __fish_seen_subcommand_from tls" -l connect -d 'Client mode: the TLS server to carry connections to' -r
complete -c ownmail -n "__fish_ownmail_using_subcommand tunnel; and __fish_seen_subcommand_from tls" -l listen -d 'Client mode: the local plaintext address to listen on (loopback only)' -r
complete -c ownmail -n "__fish_ownmail_using_subcommand tunnel; and __fish_seen_subcommand_from tls" -l ca -d 'Client mode: trust only the CA certificates in FILE (PEM), not the system\'s' -r -F
complete -c ownmail -n "__fish_ownmail_using_subcommand tunnel; and __fish_seen_subcommand_from tls" -l pin -d 'Client mode: accept exactly the certificate with this fingerprint' -r
complete -c ownmail -n "__fish_ownmail_using_subcommand tunnel; and __fish_seen_subcommand_from tls" -l accept -d 'Server mode: the address to accept TLS connections on' -r
complete -c ownmail -n "__fish_ownmail_using_subcommand tunnel; and __fish_seen_subcommand_from tls" -l to -d 'Server mode: the plaintext service to carry them to (loopback only)' -r
complete -c ownmail -n "__fish_ownmail_using_subcommand tunnel; and __fish_seen_subcommand_from tls" -s c -l config -d 'The configuration file (default: $OWNMAIL_CONFIG, else the first that exists of ./ownmail.yaml, $XDG_CONFIG_HOME/ownmail/ownmail.yaml, /etc/ownmail/ownmail.yaml)' -r -F
complete -c ownmail -n "__fish_ownmail_using_subcommand tunnel; and __fish_seen_subcommand_from tls" -l stdio -d 'Client mode: carry one connection over standard input and output'
complete -c ownmail -n "__fish_ownmail_using_subcommand tunnel; and __fish_seen_subcommand_from tls" -s v -l verbose -d 'Log more (-v: info, -vv: debug, -vvv: trace)'
complete -c ownmail -n "__fish_ownmail_using_subcommand tunnel; and __fish_seen_subcommand_from tls" -s q -l quiet -d 'Log less (-q: errors only, -qq: nothing)'
complete -c ownmail -n "__fish_ownmail_using_subcommand tunnel; and __fish_seen_subcommand_from tls" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ownmail -n "__fish_ownmail_using_subcommand tunnel; and __fish_seen_subcommand_from tls" -s V -l version -d 'Print version'
complete -c ownmail -n "__fish_ownmail_using_subcommand tunnel; and __fish_seen_subcommand_from fingerprint" -s c -l config -d 'The configuration file (default: $OWNMAIL_CONFIG, else the first that exists of ./ownmail.yaml, $XDG_CONFIG_HOME/ownmail/ownmail.yaml, /etc/ownmail/ownmail.yaml)' -r -F
complete -c ownmail -n "__fish_ownmail_using_subcommand tunnel; and __fish_seen_subcommand_from fingerprint" -s v -l verbose -d 'Log more (-v: info, -vv: debug, -vvv: trace)'
complete -c ownmail -n "__fish_ownmail_using_subcommand tunnel; and __fish_seen_subcommand_from fingerprint" -s q -l quiet -d 'Log less (-q: errors only, -qq: nothing)'
complete -c ownmail -n "__fish_ownmail_using_subcommand tunnel; and __fish_seen_subcommand_from fingerprint" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ownmail -n "__fish_ownmail_using_subcommand tunnel; and __fish_seen_subcommand_from fingerprint" -s V -l version -d 'Print version'
complete -c ownmail -n "__fish_ownmail_using_subcommand tunnel; and __fish_seen_subcommand_from help" -f -a "ssh" -d 'Forward local SMTP and IMAP ports to your server through ssh, supervised'
complete -c ownmail -n "__fish_ownmail_using_subcommand tunnel; and __fish_seen_subcommand_from help" -f -a "tls" -d 'Carry a local plaintext port over TLS to a server, or wrap a local service in TLS'
complete -c ownmail -n "__fish_ownmail_using_subcommand tunnel; and __fish_seen_subcommand_from help" -f -a "fingerprint" -d 'Print the fingerprint of a TLS server\'s certificate, to pin with --pin'
complete -c ownmail -n "__fish_ownmail_using_subcommand tunnel; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ownmail -n "__fish_ownmail_using_subcommand serve-imap" -l listen -d 'Listen for plain IMAP (STARTTLS when tls: is configured) on ADDR (repeatable; replaces imap.listen)' -r
complete -c ownmail -n "__fish_ownmail_using_subcommand serve-imap" -l listen-tls -d 'Listen for IMAP over TLS on ADDR (repeatable; replaces imap.listen_tls)' -r
complete -c ownmail -n "__fish_ownmail_using_subcommand serve-imap" -s u -l user -d 'With --preauth: the user to serve' -r
complete -c ownmail -n "__fish_ownmail_using_subcommand serve-imap" -s c -l config -d 'The configuration file (default: $OWNMAIL_CONFIG, else the first that exists of ./ownmail.yaml, $XDG_CONFIG_HOME/ownmail/ownmail.yaml, /etc/ownmail/ownmail.yaml)' -r -F
complete -c ownmail -n "__fish_ownmail_using_subcommand serve-imap" -l stdio -d 'Serve one session on standard input and output'
complete -c ownmail -n "__fish_ownmail_using_subcommand serve-imap" -l tls -d 'With --stdio: speak TLS from the first byte'
complete -c ownmail -n "__fish_ownmail_using_subcommand serve-imap" -l preauth -d 'With --stdio: the session starts logged in (as the invoking user, or --user)'
complete -c ownmail -n "__fish_ownmail_using_subcommand serve-imap" -s v -l verbose -d 'Log more (-v: info, -vv: debug, -vvv: trace)'
complete -c ownmail -n "__fish_ownmail_using_subcommand serve-imap" -s q -l quiet -d 'Log less (-q: errors only, -qq: nothing)'
complete -c ownmail -n "__fish_ownmail_using_subcommand serve-imap" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ownmail -n "__fish_ownmail_using_subcommand serve-imap" -s V -l version -d 'Print version'
complete -c ownmail -n "__fish_ownmail_using_subcommand serve" -s c -l config -d 'The configuration file (default: $OWNMAIL_CONFIG, else the first that exists of ./ownmail.yaml, $XDG_CONFIG_HOME/ownmail/ownmail.yaml, /etc/ownmail/ownmail.yaml)' -r -F
complete -c ownmail -n "__fish_ownmail_using_subcommand serve" -s v -l verbose -d 'Log more (-v: info, -vv: debug, -vvv: trace)'
complete -c ownmail -n "__fish_ownmail_using_subcommand serve" -s q -l quiet -d 'Log less (-q: errors only, -qq: nothing)'
complete -c ownmail -n "__fish_ownmail_using_subcommand serve" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ownmail -n "__fish_ownmail_using_subcommand serve" -s V -l version -d 'Print version'
complete -c ownmail -n "__fish_ownmail_using_subcommand serve-smtp" -l listen -d 'Listen on ADDR (e.g. 127.0.0.1:2525) instead of smtp.listen (repeatable)' -r
complete -c ownmail -n "__fish_ownmail_using_subcommand serve-smtp" -s c -l config -d 'The configuration file (default: $OWNMAIL_CONFIG, else the first that exists of ./ownmail.yaml, $XDG_CONFIG_HOME/ownmail/ownmail.yaml, /etc/ownmail/ownmail.yaml)' -r -F
complete -c ownmail -n "__fish_ownmail_using_subcommand serve-smtp" -l stdio -d 'Run one session on standard input and output (inetd), then exit; a client not on a TCP socket is untrusted (local programs: use `ownmail sendmail`)'
complete -c ownmail -n "__fish_ownmail_using_subcommand serve-smtp" -s v -l verbose -d 'Log more (-v: info, -vv: debug, -vvv: trace)'
complete -c ownmail -n "__fish_ownmail_using_subcommand serve-smtp" -s q -l quiet -d 'Log less (-q: errors only, -qq: nothing)'
complete -c ownmail -n "__fish_ownmail_using_subcommand serve-smtp" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ownmail -n "__fish_ownmail_using_subcommand serve-smtp" -s V -l version -d 'Print version'
complete -c ownmail -n "__fish_ownmail_using_subcommand queue; and not __fish_seen_subcommand_from list show flush delete help" -s c -l config -d 'The configuration file (default: $OWNMAIL_CONFIG, else the first that exists of ./ownmail.yaml, $XDG_CONFIG_HOME/ownmail/ownmail.yaml, /etc/ownmail/ownmail.yaml)' -r -F
complete -c ownmail -n "__fish_ownmail_using_subcommand queue; and not __fish_seen_subcommand_from list show flush delete help" -s v -l verbose -d 'Log more (-v: info, -vv: debug, -vvv: trace)'
complete -c ownmail -n "__fish_ownmail_using_subcommand queue; and not __fish_seen_subcommand_from list show flush delete help" -s q -l quiet -d 'Log less (-q: errors only, -qq: nothing)'
complete -c ownmail -n "__fish_ownmail_using_subcommand queue; and not __fish_seen_subcommand_from list show flush delete help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ownmail -n "__fish_ownmail_using_subcommand queue; and not __fish_seen_subcommand_from list show flush delete help" -s V -l version -d 'Print version'
complete -c ownmail -n "__fish_ownmail_using_subcommand queue; and not __fish_seen_subcommand_from list show flush delete help" -f -a "list" -d 'List the queued messages: id, age, sender, recipients, attempts'
complete -c ownmail -n "__fish_ownmail_using_subcommand queue; and not __fish_seen_subcommand_from list show flush delete help" -f -a "show" -d 'Show one message\'s envelope and headers'
complete -c ownmail -n "__fish_ownmail_using_subcommand queue; and not __fish_seen_subcommand_from list show flush delete help" -f -a "flush" -d 'Try every queued message now, whatever its next retry time'
complete -c ownmail -n "__fish_ownmail_using_subcommand queue; and not __fish_seen_subcommand_from list show flush delete help" -f -a "delete" -d 'Remove a message from the queue (it is not sent and not bounced)'
complete -c ownmail -n "__fish_ownmail_using_subcommand queue; and not __fish_seen_subcommand_from list show flush delete help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ownmail -n "__fish_ownmail_using_subcommand queue; and __fish_seen_subcommand_from list" -s c -l config -d 'The configuration file (default: $OWNMAIL_CONFIG, else the first that exists of ./ownmail.yaml, $XDG_CONFIG_HOME/ownmail/ownmail.yaml, /etc/ownmail/ownmail.yaml)' -r -F
complete -c ownmail -n "__fish_ownmail_using_subcommand queue; and __fish_seen_subcommand_from list" -s v -l verbose -d 'Log more (-v: info, -vv: debug, -vvv: trace)'
complete -c ownmail -n "__fish_ownmail_using_subcommand queue; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Log less (-q: errors only, -qq: nothing)'
complete -c ownmail -n "__fish_ownmail_using_subcommand queue; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c ownmail -n "__fish_ownmail_using_subcommand queue; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c ownmail -n "__fish_ownmail_using_subcommand queue; and __fish_seen_subcommand_from show" -s c -l config -d 'The configuration file (default: $OWNMAIL_CONFIG, else the first that exists of ./ownmail.yaml, $XDG_CONFIG_HOME/ownmail/ownmail.yaml, /etc/ownmail/ownmail.yaml)' -r -F
complete -c ownmail -n "__fish_ownmail_using_subcommand queue; and __fish_seen_subcommand_from show" -s v -l verbose -d 'Log more (-v: info, -vv: debug, -vvv: trace)'
complete -c ownmail -n "__fish_ownmail_using_subcommand queue; and __fish_seen_subcommand_from show" -s q -l quiet -d 'Log less (-q: errors only, -qq: nothing)'
complete -c ownmail -n "__fish_ownmail_using_subcommand queue; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c ownmail -n "__fish_ownmail_using_subcommand queue; and __fish_seen_subcommand_from show" -s V -l version -d 'Print version'
complete -c ownmail -n "__fish_ownmail_using_subcommand queue; and __fish_seen_subcommand_from flush" -s c -l config -d 'The configuration file (default: $OWNMAIL_CONFIG, else the first that exists of ./ownmail.yaml, $XDG_CONFIG_HOME/ownmail/ownmail.yaml, /etc/ownmail/ownmail.yaml)' -r -F
complete -c ownmail -n "__fish_ownmail_using_subcommand queue; and __fish_seen_subcommand_from flush" -s v -l verbose -d 'Log more (-v: info, -vv: debug, -vvv: trace)'
complete -c ownmail -n "__fish_ownmail_using_subcommand queue; and __fish_seen_subcommand_from flush" -s q -l quiet -d 'Log less (-q: errors only, -qq: nothing)'
complete -c ownmail -n "__fish_ownmail_using_subcommand queue; and __fish_seen_subcommand_from flush" -s h -l help -d 'Print help'
complete -c ownmail -n "__fish_ownmail_using_subcommand queue; and __fish_seen_subcommand_from flush" -s V -l version -d 'Print version'
complete -c ownmail -n "__fish_ownmail_using_subcommand queue; and __fish_seen_subcommand_from delete" -s c -l config -d 'The configuration file (default: $OWNMAIL_CONFIG, else the first that exists of ./ownmail.yaml, $XDG_CONFIG_HOME/ownmail/ownmail.yaml, /etc/ownmail/ownmail.yaml)' -r -F
complete -c ownmail -n "__fish_ownmail_using_subcommand queue; and __fish_seen_subcommand_from delete" -s v -l verbose -d 'Log more (-v: info, -vv: debug, -vvv: trace)'
complete -c ownmail -n "__fish_ownmail_using_subcommand queue; and __fish_seen_subcommand_from delete" -s q -l quiet -d 'Log less (-q: errors only, -qq: nothing)'
complete -c ownmail -n "__fish_ownmail_using_subcommand queue; and __fish_seen_subcommand_from delete" -s h -l help -d 'Print help'
complete -c ownmail -n "__fish_ownmail_using_subcommand queue; and __fish_seen_subcommand_from delete" -s V -l version -d 'Print version'
complete -c ownmail -n "__fish_ownmail_using_subcommand queue; and __fish_seen_subcommand_from help" -f -a "list" -d 'List the queued messages: id, age, sender, recipients, attempts'
complete -c ownmail -n "__fish_ownmail_using_subcommand queue; and __fish_seen_subcommand_from help" -f -a "show" -d 'Show one message\'s envelope and headers'
complete -c ownmail -n "__fish_ownmail_using_subcommand queue; and __fish_seen_subcommand_from help" -f -a "flush" -d 'Try every queued message now, whatever its next retry time'
complete -c ownmail -n "__fish_ownmail_using_subcommand queue; and __fish_seen_subcommand_from help" -f -a "delete" -d 'Remove a message from the queue (it is not sent and not bounced)'
complete -c ownmail -n "__fish_ownmail_using_subcommand queue; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ownmail -n "__fish_ownmail_using_subcommand sendmail" -s f -d 'The envelope sender (default: the user running the command @ the first domain); -r is the same' -r
complete -c ownmail -n "__fish_ownmail_using_subcommand sendmail" -s F -d 'The sender\'s full name, for the From: field added to a message without one' -r
complete -c ownmail -n "__fish_ownmail_using_subcommand sendmail" -s b -d 'The mode: m (the default: read a message and queue it) or i (rebuild the aliases: nothing to do here)' -r
complete -c ownmail -n "__fish_ownmail_using_subcommand sendmail" -s c -l config -d 'The configuration file (default: $OWNMAIL_CONFIG, else the first that exists of ./ownmail.yaml, $XDG_CONFIG_HOME/ownmail/ownmail.yaml, /etc/ownmail/ownmail.yaml)' -r -F
complete -c ownmail -n "__fish_ownmail_using_subcommand sendmail" -s t -d 'Take the recipients from the To:, Cc: and Bcc: fields (Bcc: is removed)'
complete -c ownmail -n "__fish_ownmail_using_subcommand sendmail" -s i -d 'A line with a single dot does not end the message'
complete -c ownmail -n "__fish_ownmail_using_subcommand sendmail" -s v -l verbose -d 'Log more (-v: info, -vv: debug, -vvv: trace)'
complete -c ownmail -n "__fish_ownmail_using_subcommand sendmail" -s q -l quiet -d 'Log less (-q: errors only, -qq: nothing)'
complete -c ownmail -n "__fish_ownmail_using_subcommand sendmail" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ownmail -n "__fish_ownmail_using_subcommand sendmail" -s V -l version -d 'Print version'
complete -c ownmail -n "__fish_ownmail_using_subcommand help; and not __fish_seen_subcommand_from deliver user check-config convert-mbox fetch spamcheck tunnel serve-imap serve serve-smtp queue sendmail help" -f -a "deliver" -d 'Deliver one message from standard input into a Maildir folder'
complete -c ownmail -n "__fish_ownmail_using_subcommand help; and not __fish_seen_subcommand_from deliver user check-config convert-mbox fetch spamcheck tunnel serve-imap serve serve-smtp queue sendmail help" -f -a "user" -d 'Manage users: add, change passwords, delete, list'
complete -c ownmail -n "__fish_ownmail_using_subcommand help; and not __fish_seen_subcommand_from deliver user check-config convert-mbox fetch spamcheck tunnel serve-imap serve serve-smtp queue sendmail help" -f -a "check-config" -d 'Check the configuration and print it resolved'
complete -c ownmail -n "__fish_ownmail_using_subcommand help; and not __fish_seen_subcommand_from deliver user check-config convert-mbox fetch spamcheck tunnel serve-imap serve serve-smtp queue sendmail help" -f -a "convert-mbox" -d 'Convert mbox files and trees into Maildir folders, once'
complete -c ownmail -n "__fish_ownmail_using_subcommand help; and not __fish_seen_subcommand_from deliver user check-config convert-mbox fetch spamcheck tunnel serve-imap serve serve-smtp queue sendmail help" -f -a "fetch" -d 'Fetch mail from remote POP3 and IMAP accounts into local mailboxes'
complete -c ownmail -n "__fish_ownmail_using_subcommand help; and not __fish_seen_subcommand_from deliver user check-config convert-mbox fetch spamcheck tunnel serve-imap serve serve-smtp queue sendmail help" -f -a "spamcheck" -d 'Classify a message as spam or ham, or train the filter'
complete -c ownmail -n "__fish_ownmail_using_subcommand help; and not __fish_seen_subcommand_from deliver user check-config convert-mbox fetch spamcheck tunnel serve-imap serve serve-smtp queue sendmail help" -f -a "tunnel" -d 'Reach your mail server from any network, encrypted (ssh or TLS)'
complete -c ownmail -n "__fish_ownmail_using_subcommand help; and not __fish_seen_subcommand_from deliver user check-config convert-mbox fetch spamcheck tunnel serve-imap serve serve-smtp queue sendmail help" -f -a "serve-imap" -d 'Serve the users\' Maildirs over IMAP'
complete -c ownmail -n "__fish_ownmail_using_subcommand help; and not __fish_seen_subcommand_from deliver user check-config convert-mbox fetch spamcheck tunnel serve-imap serve serve-smtp queue sendmail help" -f -a "serve" -d 'Run every configured server in one process (IMAP, and SMTP when configured)'
complete -c ownmail -n "__fish_ownmail_using_subcommand help; and not __fish_seen_subcommand_from deliver user check-config convert-mbox fetch spamcheck tunnel serve-imap serve serve-smtp queue sendmail help" -f -a "serve-smtp" -d 'Receive mail for our domains and send our users\' mail (SMTP server)'
complete -c ownmail -n "__fish_ownmail_using_subcommand help; and not __fish_seen_subcommand_from deliver user check-config convert-mbox fetch spamcheck tunnel serve-imap serve serve-smtp queue sendmail help" -f -a "queue" -d 'Look at and act on the outbound queue'
complete -c ownmail -n "__fish_ownmail_using_subcommand help; and not __fish_seen_subcommand_from deliver user check-config convert-mbox fetch spamcheck tunnel serve-imap serve serve-smtp queue sendmail help" -f -a "sendmail" -d 'Queue a message from standard input, as sendmail does'
complete -c ownmail -n "__fish_ownmail_using_subcommand help; and not __fish_seen_subcommand_from deliver user check-config convert-mbox fetch spamcheck tunnel serve-imap serve serve-smtp queue sendmail help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ownmail -n "__fish_ownmail_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "add" -d 'Add a user and create their Maildir (INBOX, Drafts, Sent, Junk, Trash, Archive)'
complete -c ownmail -n "__fish_ownmail_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "passwd" -d 'Change a user\'s password'
complete -c ownmail -n "__fish_ownmail_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "del" -d 'Delete a user (their mail is kept unless --purge)'
complete -c ownmail -n "__fish_ownmail_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "list" -d 'List the users, and any whose line cannot be used'
complete -c ownmail -n "__fish_ownmail_using_subcommand help; and __fish_seen_subcommand_from spamcheck" -f -a "train" -d 'Learn messages as spam or ham (Maildirs, folders of files, mbox files, single files)'
complete -c ownmail -n "__fish_ownmail_using_subcommand help; and __fish_seen_subcommand_from tunnel" -f -a "ssh" -d 'Forward local SMTP and IMAP ports to your server through ssh, supervised'
complete -c ownmail -n "__fish_ownmail_using_subcommand help; and __fish_seen_subcommand_from tunnel" -f -a "tls" -d 'Carry a local plaintext port over TLS to a server, or wrap a local service in TLS'
complete -c ownmail -n "__fish_ownmail_using_subcommand help; and __fish_seen_subcommand_from tunnel" -f -a "fingerprint" -d 'Print the fingerprint of a TLS server\'s certificate, to pin with --pin'
complete -c ownmail -n "__fish_ownmail_using_subcommand help; and __fish_seen_subcommand_from queue" -f -a "list" -d 'List the queued messages: id, age, sender, recipients, attempts'
complete -c ownmail -n "__fish_ownmail_using_subcommand help; and __fish_seen_subcommand_from queue" -f -a "show" -d 'Show one message\'s envelope and headers'
complete -c ownmail -n "__fish_ownmail_using_subcommand help; and __fish_seen_subcommand_from queue" -f -a "flush" -d 'Try every queued message now, whatever its next retry time'
complete -c ownmail -n "__fish_ownmail_using_subcommand help; and __fish_seen_subcommand_from queue" -f -a "delete" -d 'Remove a message from the queue (it is not sent and not bounced)'
