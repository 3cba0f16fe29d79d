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

complete -c ownmail -n "__fish_ownmail_needs_command" -s c -l config -d 'The configuration file (default: see below)' -r -F
complete -c ownmail -n "__fish_ownmail_needs_command" -s v -l verbose -d 'Log more (-v: info, -vv: debug, -vvv: trace)'
complete -c ownmail -n "__fish_ownmail_needs_command" -s q -l quiet -d 'Log less (-q: errors only, -qq: nothing)'
complete -c ownmail -n "__fish_ownmail_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ownmail -n "__fish_ownmail_needs_command" -s V -l version -d 'Print version'
complete -c ownmail -n "__fish_ownmail_needs_command" -f -a "deliver" -d 'Deliver one message from standard input into a Maildir folder'
complete -c ownmail -n "__fish_ownmail_needs_command" -f -a "user" -d 'Manage users: add, change passwords, delete, list'
complete -c ownmail -n "__fish_ownmail_needs_command" -f -a "check-config" -d 'Check the configuration and print it resolved'
complete -c ownmail -n "__fish_ownmail_needs_command" -f -a "fetch" -d 'Fetch mail from remote POP3 and IMAP accounts into local mailboxes'
complete -c ownmail -n "__fish_ownmail_needs_command" -f -a "spamcheck" -d 'Classify a message as spam or ham, or train the filter'
complete -c ownmail -n "__fish_ownmail_needs_command" -f -a "generate-docs" -d 'Write the man pages and shell completions into DIR/man and DIR/completions'
complete -c ownmail -n "__fish_ownmail_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ownmail -n "__fish_ownmail_using_subcommand deliver" -s u -l user -d 'Deliver to this user\'s Maildir (<data_dir>/mail/NAME, from the configuration)' -r
complete -c ownmail -n "__fish_ownmail_using_subcommand deliver" -s m -l maildir -d 'Deliver to the Maildir at DIR (created if missing; no configuration needed)' -r -F
complete -c ownmail -n "__fish_ownmail_using_subcommand deliver" -s f -l folder -d 'The folder, `/` between levels (e.g. Lists/rust)' -r
complete -c ownmail -n "__fish_ownmail_using_subcommand deliver" -s F -l from -d 'The envelope sender, for Return-Path: (default: the `From ` line, else $SENDER)' -r
complete -c ownmail -n "__fish_ownmail_using_subcommand deliver" -s a -l recipient -d 'The final recipient, for Delivered-To: (default: $RECIPIENT, else USER@first domain)' -r
complete -c ownmail -n "__fish_ownmail_using_subcommand deliver" -l flags -d 'IMAP flags and keywords to set, separated by spaces or commas (e.g. \'\\Seen $Label1\')' -r
complete -c ownmail -n "__fish_ownmail_using_subcommand deliver" -s c -l config -d 'The configuration file (default: see below)' -r -F
complete -c ownmail -n "__fish_ownmail_using_subcommand deliver" -l create -d 'Create the folder if it does not exist'
complete -c ownmail -n "__fish_ownmail_using_subcommand deliver" -s v -l verbose -d 'Log more (-v: info, -vv: debug, -vvv: trace)'
complete -c ownmail -n "__fish_ownmail_using_subcommand deliver" -s q -l quiet -d 'Log less (-q: errors only, -qq: nothing)'
complete -c ownmail -n "__fish_ownmail_using_subcommand deliver" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ownmail -n "__fish_ownmail_using_subcommand deliver" -s V -l version -d 'Print version'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and not __fish_seen_subcommand_from add passwd del list help" -s c -l config -d 'The configuration file (default: see below)' -r -F
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and not __fish_seen_subcommand_from add passwd del list help" -s v -l verbose -d 'Log more (-v: info, -vv: debug, -vvv: trace)'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and not __fish_seen_subcommand_from add passwd del list help" -s q -l quiet -d 'Log less (-q: errors only, -qq: nothing)'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and not __fish_seen_subcommand_from add passwd del list help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and not __fish_seen_subcommand_from add passwd del list help" -s V -l version -d 'Print version'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and not __fish_seen_subcommand_from add passwd del list help" -f -a "add" -d 'Add a user and create their Maildir (INBOX, Drafts, Sent, Junk, Trash, Archive)'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and not __fish_seen_subcommand_from add passwd del list help" -f -a "passwd" -d 'Change a user\'s password'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and not __fish_seen_subcommand_from add passwd del list help" -f -a "del" -d 'Delete a user (their mail is kept unless --purge)'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and not __fish_seen_subcommand_from add passwd del list help" -f -a "list" -d 'List the users, and any whose line cannot be used'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and not __fish_seen_subcommand_from add passwd del list help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from add" -s c -l config -d 'The configuration file (default: see below)' -r -F
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from add" -l password-stdin -d 'Read the password as one line from standard input instead of prompting'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from add" -s v -l verbose -d 'Log more (-v: info, -vv: debug, -vvv: trace)'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from add" -s q -l quiet -d 'Log less (-q: errors only, -qq: nothing)'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from add" -s V -l version -d 'Print version'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from passwd" -s c -l config -d 'The configuration file (default: see below)' -r -F
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from passwd" -l password-stdin -d 'Read the password as one line from standard input instead of prompting'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from passwd" -s v -l verbose -d 'Log more (-v: info, -vv: debug, -vvv: trace)'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from passwd" -s q -l quiet -d 'Log less (-q: errors only, -qq: nothing)'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from passwd" -s h -l help -d 'Print help'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from passwd" -s V -l version -d 'Print version'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from del" -s c -l config -d 'The configuration file (default: see below)' -r -F
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from del" -l purge -d 'Also delete the user\'s Maildir, irrecoverably'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from del" -s v -l verbose -d 'Log more (-v: info, -vv: debug, -vvv: trace)'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from del" -s q -l quiet -d 'Log less (-q: errors only, -qq: nothing)'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from del" -s h -l help -d 'Print help'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from del" -s V -l version -d 'Print version'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from list" -s c -l config -d 'The configuration file (default: see below)' -r -F
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from list" -s v -l verbose -d 'Log more (-v: info, -vv: debug, -vvv: trace)'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Log less (-q: errors only, -qq: nothing)'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "add" -d 'Add a user and create their Maildir (INBOX, Drafts, Sent, Junk, Trash, Archive)'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "passwd" -d 'Change a user\'s password'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "del" -d 'Delete a user (their mail is kept unless --purge)'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "list" -d 'List the users, and any whose line cannot be used'
complete -c ownmail -n "__fish_ownmail_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ownmail -n "__fish_ownmail_using_subcommand check-config" -s c -l config -d 'The configuration file (default: see below)' -r -F
complete -c ownmail -n "__fish_ownmail_using_subcommand check-config" -s v -l verbose -d 'Log more (-v: info, -vv: debug, -vvv: trace)'
complete -c ownmail -n "__fish_ownmail_using_subcommand check-config" -s q -l quiet -d 'Log less (-q: errors only, -qq: nothing)'
complete -c ownmail -n "__fish_ownmail_using_subcommand check-config" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ownmail -n "__fish_ownmail_using_subcommand check-config" -s V -l version -d 'Print version'
complete -c ownmail -n "__fish_ownmail_using_subcommand fetch" -s a -l account -d 'Fetch only this account (repeat for several; default: all)' -r
complete -c ownmail -n "__fish_ownmail_using_subcommand fetch" -s c -l config -d 'The configuration file (default: see below)' -r -F
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
complete -c ownmail -n "__fish_ownmail_using_subcommand spamcheck; and not __fish_seen_subcommand_from train help" -s c -l config -d 'The configuration file (default: see below)' -r -F
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
complete -c ownmail -n "__fish_ownmail_using_subcommand spamcheck; and __fish_seen_subcommand_from train" -s c -l config -d 'The configuration file (default: see below)' -r -F
complete -c ownmail -n "__fish_ownmail_using_subcommand spamcheck; and __fish_seen_subcommand_from train" -l forget -d 'Unlearn these messages instead (undo an earlier training)'
complete -c ownmail -n "__fish_ownmail_using_subcommand spamcheck; and __fish_seen_subcommand_from train" -s v -l verbose -d 'Log more (-v: info, -vv: debug, -vvv: trace)'
complete -c ownmail -n "__fish_ownmail_using_subcommand spamcheck; and __fish_seen_subcommand_from train" -s q -l quiet -d 'Log less (-q: errors only, -qq: nothing)'
complete -c ownmail -n "__fish_ownmail_using_subcommand spamcheck; and __fish_seen_subcommand_from train" -s h -l help -d 'Print help'
complete -c ownmail -n "__fish_ownmail_using_subcommand spamcheck; and __fish_seen_subcommand_from train" -s V -l version -d 'Print version'
complete -c ownmail -n "__fish_ownmail_using_subcommand spamcheck; and __fish_seen_subcommand_from help" -f -a "train" -d 'Learn messages as spam or ham (Maildirs, folders of files, mbox files, single files)'
complete -c ownmail -n "__fish_ownmail_using_subcommand spamcheck; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ownmail -n "__fish_ownmail_using_subcommand generate-docs" -s c -l config -d 'The configuration file (default: see below)' -r -F
complete -c ownmail -n "__fish_ownmail_using_subcommand generate-docs" -s v -l verbose -d 'Log more (-v: info, -vv: debug, -vvv: trace)'
complete -c ownmail -n "__fish_ownmail_using_subcommand generate-docs" -s q -l quiet -d 'Log less (-q: errors only, -qq: nothing)'
complete -c ownmail -n "__fish_ownmail_using_subcommand generate-docs" -s h -l help -d 'Print help'
complete -c ownmail -n "__fish_ownmail_using_subcommand generate-docs" -s V -l version -d 'Print version'
complete -c ownmail -n "__fish_ownmail_using_subcommand help; and not __fish_seen_subcommand_from deliver user check-config fetch spamcheck generate-docs help" -f -a "deliver" -d 'Deliver one message from standard input into a Maildir folder'
complete -c ownmail -n "__fish_ownmail_using_subcommand help; and not __fish_seen_subcommand_from deliver user check-config fetch spamcheck generate-docs help" -f -a "user" -d 'Manage users: add, change passwords, delete, list'
complete -c ownmail -n "__fish_ownmail_using_subcommand help; and not __fish_seen_subcommand_from deliver user check-config fetch spamcheck generate-docs help" -f -a "check-config" -d 'Check the configuration and print it resolved'
complete -c ownmail -n "__fish_ownmail_using_subcommand help; and not __fish_seen_subcommand_from deliver user check-config fetch spamcheck generate-docs help" -f -a "fetch" -d 'Fetch mail from remote POP3 and IMAP accounts into local mailboxes'
complete -c ownmail -n "__fish_ownmail_using_subcommand help; and not __fish_seen_subcommand_from deliver user check-config fetch spamcheck generate-docs help" -f -a "spamcheck" -d 'Classify a message as spam or ham, or train the filter'
complete -c ownmail -n "__fish_ownmail_using_subcommand help; and not __fish_seen_subcommand_from deliver user check-config fetch spamcheck generate-docs help" -f -a "generate-docs" -d 'Write the man pages and shell completions into DIR/man and DIR/completions'
complete -c ownmail -n "__fish_ownmail_using_subcommand help; and not __fish_seen_subcommand_from deliver user check-config fetch spamcheck generate-docs help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ownmail -n "__fish_ownmail_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "add" -d 'Add a user and create their Maildir (INBOX, Drafts, Sent, Junk, Trash, Archive)'
complete -c ownmail -n "__fish_ownmail_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "passwd" -d 'Change a user\'s password'
complete -c ownmail -n "__fish_ownmail_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "del" -d 'Delete a user (their mail is kept unless --purge)'
complete -c ownmail -n "__fish_ownmail_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "list" -d 'List the users, and any whose line cannot be used'
complete -c ownmail -n "__fish_ownmail_using_subcommand help; and __fish_seen_subcommand_from spamcheck" -f -a "train" -d 'Learn messages as spam or ham (Maildirs, folders of files, mbox files, single files)'
