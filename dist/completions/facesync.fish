# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_facesync_global_optspecs
    string join \n json-log log-file= q/quiet h/help V/version
end

function __fish_facesync_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_facesync_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_facesync_using_subcommand
    set -l cmd (__fish_facesync_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c facesync -n "__fish_facesync_needs_command" -l log-file -d 'Also append the log to this file' -r -F
complete -c facesync -n "__fish_facesync_needs_command" -l json-log -d 'Log lines as JSON objects (for log collectors); RUST_LOG sets the level as usual'
complete -c facesync -n "__fish_facesync_needs_command" -s q -l quiet -d 'No progress bars or progress lines; only warnings, errors and the summary'
complete -c facesync -n "__fish_facesync_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c facesync -n "__fish_facesync_needs_command" -s V -l version -d 'Print version'
complete -c facesync -n "__fish_facesync_needs_command" -f -a "demo" -d 'Run the whole job on the bundled fixtures, with a state DB in a temporary folder'
complete -c facesync -n "__fish_facesync_needs_command" -f -a "init" -d 'Write a commented config.toml to start from'
complete -c facesync -n "__fish_facesync_needs_command" -f -a "plan" -d 'Match, check and decide what `sync` would do, per person and target (no network)'
complete -c facesync -n "__fish_facesync_needs_command" -f -a "sync" -d 'Upload what is new, changed or failed, to every enabled target'
complete -c facesync -n "__fish_facesync_needs_command" -f -a "verify" -d 'Compare the roster and the state DB with what each target holds, and print the drift'
complete -c facesync -n "__fish_facesync_needs_command" -f -a "doctor" -d 'Will tonight\'s run work? Checks the config, roster, photos, state DB and every target (reachable, credentials, permissions, room, clock) without changing anything'
complete -c facesync -n "__fish_facesync_needs_command" -f -a "report" -d 'Every person\'s outcome per target, as CSV, JSON or a self-contained HTML page'
complete -c facesync -n "__fish_facesync_needs_command" -f -a "fetch" -d 'Download every roster person\'s face from Feishu into a folder (backup, audit)'
complete -c facesync -n "__fish_facesync_needs_command" -f -a "status" -d 'Counts per target and state, and the last runs, from the state DB; or one person\'s audit trail (`--person`)'
complete -c facesync -n "__fish_facesync_needs_command" -f -a "emulate" -d 'Run the Feishu + VziCloud + Hikvision terminal emulator as a server, to try a config or a client against'
complete -c facesync -n "__fish_facesync_needs_command" -f -a "completions" -d 'Print the shell completion script for bash, zsh, fish, powershell or elvish'
complete -c facesync -n "__fish_facesync_needs_command" -f -a "man" -d 'Print the man page (roff) of facesync, or of one of its commands, made from these same definitions'
complete -c facesync -n "__fish_facesync_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c facesync -n "__fish_facesync_using_subcommand demo" -l log-file -d 'Also append the log to this file' -r -F
complete -c facesync -n "__fish_facesync_using_subcommand demo" -l json-log -d 'Log lines as JSON objects (for log collectors); RUST_LOG sets the level as usual'
complete -c facesync -n "__fish_facesync_using_subcommand demo" -s q -l quiet -d 'No progress bars or progress lines; only warnings, errors and the summary'
complete -c facesync -n "__fish_facesync_using_subcommand demo" -s h -l help -d 'Print help'
complete -c facesync -n "__fish_facesync_using_subcommand init" -l log-file -d 'Also append the log to this file' -r -F
complete -c facesync -n "__fish_facesync_using_subcommand init" -l force -d 'Overwrite an existing config.toml'
complete -c facesync -n "__fish_facesync_using_subcommand init" -l json-log -d 'Log lines as JSON objects (for log collectors); RUST_LOG sets the level as usual'
complete -c facesync -n "__fish_facesync_using_subcommand init" -s q -l quiet -d 'No progress bars or progress lines; only warnings, errors and the summary'
complete -c facesync -n "__fish_facesync_using_subcommand init" -s h -l help -d 'Print help'
complete -c facesync -n "__fish_facesync_using_subcommand plan" -s c -l config -d 'The configuration file' -r -F
complete -c facesync -n "__fish_facesync_using_subcommand plan" -l format -d 'Output: a table for people, or one JSON object per line per person and target' -r -f -a "table\t''
json\t''"
complete -c facesync -n "__fish_facesync_using_subcommand plan" -l target -d 'Plan only for this target (repeatable); default: every enabled target' -r
complete -c facesync -n "__fish_facesync_using_subcommand plan" -l preview -d 'Write each normalized photo that would be uploaded as DIR/<target>/<id>.<ext>' -r -F
complete -c facesync -n "__fish_facesync_using_subcommand plan" -l log-file -d 'Also append the log to this file' -r -F
complete -c facesync -n "__fish_facesync_using_subcommand plan" -l json-log -d 'Log lines as JSON objects (for log collectors); RUST_LOG sets the level as usual'
complete -c facesync -n "__fish_facesync_using_subcommand plan" -s q -l quiet -d 'No progress bars or progress lines; only warnings, errors and the summary'
complete -c facesync -n "__fish_facesync_using_subcommand plan" -s h -l help -d 'Print help'
complete -c facesync -n "__fish_facesync_using_subcommand sync" -s c -l config -d 'The configuration file' -r -F
complete -c facesync -n "__fish_facesync_using_subcommand sync" -l target -d 'Sync only this target (repeatable); default: every enabled target' -r
complete -c facesync -n "__fish_facesync_using_subcommand sync" -l limit -d 'Upload at most N people this run' -r
complete -c facesync -n "__fish_facesync_using_subcommand sync" -l max-duration -d 'Stop taking new work after this long (such as 90m or 2h); requests in flight finish' -r
complete -c facesync -n "__fish_facesync_using_subcommand sync" -l log-file -d 'Also append the log to this file' -r -F
complete -c facesync -n "__fish_facesync_using_subcommand sync" -l only-failed -d 'Take only people whose last attempt failed, including permanent failures'
complete -c facesync -n "__fish_facesync_using_subcommand sync" -l force -d 'Send every valid person again, even when the target already holds the photo; with --prune, also remove leavers beyond prune_max_share'
complete -c facesync -n "__fish_facesync_using_subcommand sync" -l dry-run -d 'Do not send anything: print the plan (the same as `facesync plan`)'
complete -c facesync -n "__fish_facesync_using_subcommand sync" -l prune -d 'After the uploads, delete from VziCloud the group\'s users who are no longer in the roster; refused when more than prune_max_share of the group would go, unless --force'
complete -c facesync -n "__fish_facesync_using_subcommand sync" -l json-log -d 'Log lines as JSON objects (for log collectors); RUST_LOG sets the level as usual'
complete -c facesync -n "__fish_facesync_using_subcommand sync" -s q -l quiet -d 'No progress bars or progress lines; only warnings, errors and the summary'
complete -c facesync -n "__fish_facesync_using_subcommand sync" -s h -l help -d 'Print help'
complete -c facesync -n "__fish_facesync_using_subcommand verify" -s c -l config -d 'The configuration file' -r -F
complete -c facesync -n "__fish_facesync_using_subcommand verify" -l format -d 'Output: a table, or one JSON document' -r -f -a "table\t''
json\t''"
complete -c facesync -n "__fish_facesync_using_subcommand verify" -l target -d 'Check only this target (repeatable); default: every enabled target' -r
complete -c facesync -n "__fish_facesync_using_subcommand verify" -l log-file -d 'Also append the log to this file' -r -F
complete -c facesync -n "__fish_facesync_using_subcommand verify" -l json-log -d 'Log lines as JSON objects (for log collectors); RUST_LOG sets the level as usual'
complete -c facesync -n "__fish_facesync_using_subcommand verify" -s q -l quiet -d 'No progress bars or progress lines; only warnings, errors and the summary'
complete -c facesync -n "__fish_facesync_using_subcommand verify" -s h -l help -d 'Print help'
complete -c facesync -n "__fish_facesync_using_subcommand doctor" -s c -l config -d 'The configuration file' -r -F
complete -c facesync -n "__fish_facesync_using_subcommand doctor" -l format -d 'Output: a table, one line per check, or a JSON array of {check, target, status, detail, advice}' -r -f -a "table\t''
json\t''"
complete -c facesync -n "__fish_facesync_using_subcommand doctor" -l target -d 'Check only this target (repeatable); default: every enabled target' -r
complete -c facesync -n "__fish_facesync_using_subcommand doctor" -l log-file -d 'Also append the log to this file' -r -F
complete -c facesync -n "__fish_facesync_using_subcommand doctor" -l json-log -d 'Log lines as JSON objects (for log collectors); RUST_LOG sets the level as usual'
complete -c facesync -n "__fish_facesync_using_subcommand doctor" -s q -l quiet -d 'No progress bars or progress lines; only warnings, errors and the summary'
complete -c facesync -n "__fish_facesync_using_subcommand doctor" -s h -l help -d 'Print help'
complete -c facesync -n "__fish_facesync_using_subcommand report" -s c -l config -d 'The configuration file' -r -F
complete -c facesync -n "__fish_facesync_using_subcommand report" -l format -d 'Output format' -r -f -a "csv\t''
json\t''
html\t''"
complete -c facesync -n "__fish_facesync_using_subcommand report" -s o -l output -d 'Write to this file instead of standard output' -r -F
complete -c facesync -n "__fish_facesync_using_subcommand report" -l log-file -d 'Also append the log to this file' -r -F
complete -c facesync -n "__fish_facesync_using_subcommand report" -l json-log -d 'Log lines as JSON objects (for log collectors); RUST_LOG sets the level as usual'
complete -c facesync -n "__fish_facesync_using_subcommand report" -s q -l quiet -d 'No progress bars or progress lines; only warnings, errors and the summary'
complete -c facesync -n "__fish_facesync_using_subcommand report" -s h -l help -d 'Print help'
complete -c facesync -n "__fish_facesync_using_subcommand fetch" -s c -l config -d 'The configuration file' -r -F
complete -c facesync -n "__fish_facesync_using_subcommand fetch" -l out -d 'Folder to write the faces into (created if missing)' -r -F
complete -c facesync -n "__fish_facesync_using_subcommand fetch" -l target -d 'The target to download from, when more than one enabled target can' -r
complete -c facesync -n "__fish_facesync_using_subcommand fetch" -l log-file -d 'Also append the log to this file' -r -F
complete -c facesync -n "__fish_facesync_using_subcommand fetch" -l cropped -d 'Download Feishu\'s face crop instead of the stored photo'
complete -c facesync -n "__fish_facesync_using_subcommand fetch" -l force -d 'Download again faces already in the folder'
complete -c facesync -n "__fish_facesync_using_subcommand fetch" -l json-log -d 'Log lines as JSON objects (for log collectors); RUST_LOG sets the level as usual'
complete -c facesync -n "__fish_facesync_using_subcommand fetch" -s q -l quiet -d 'No progress bars or progress lines; only warnings, errors and the summary'
complete -c facesync -n "__fish_facesync_using_subcommand fetch" -s h -l help -d 'Print help'
complete -c facesync -n "__fish_facesync_using_subcommand status" -s c -l config -d 'The configuration file' -r -F
complete -c facesync -n "__fish_facesync_using_subcommand status" -l format -d 'Output format' -r -f -a "table\t''
json\t''"
complete -c facesync -n "__fish_facesync_using_subcommand status" -l person -d 'List every request about this person (by roster id), oldest first: uploads, removals, checks and downloads, at every target, with how each ended' -r
complete -c facesync -n "__fish_facesync_using_subcommand status" -l runs -d 'How many of the last sync runs the trend lists (per run and target: delivered, unchanged, failed, invalid, and the run\'s duration); at most 30' -r
complete -c facesync -n "__fish_facesync_using_subcommand status" -l log-file -d 'Also append the log to this file' -r -F
complete -c facesync -n "__fish_facesync_using_subcommand status" -l json-log -d 'Log lines as JSON objects (for log collectors); RUST_LOG sets the level as usual'
complete -c facesync -n "__fish_facesync_using_subcommand status" -s q -l quiet -d 'No progress bars or progress lines; only warnings, errors and the summary'
complete -c facesync -n "__fish_facesync_using_subcommand status" -s h -l help -d 'Print help'
complete -c facesync -n "__fish_facesync_using_subcommand emulate" -l listen -d 'Address to listen on (port 0: any free port)' -r
complete -c facesync -n "__fish_facesync_using_subcommand emulate" -s c -l config -d 'Accept exactly the credentials this facesync config names (Feishu app_id and app secret, VziCloud accesskey_id, secret and app_id); secrets are read as `sync` reads them' -r -F
complete -c facesync -n "__fish_facesync_using_subcommand emulate" -l users -d 'Feishu users (user_id) that exist, comma-separated; default: everyone' -r
complete -c facesync -n "__fish_facesync_using_subcommand emulate" -l users-file -d 'Feishu users that exist, one user_id per line (`#` starts a comment)' -r -F
complete -c facesync -n "__fish_facesync_using_subcommand emulate" -l users-roster -d 'Feishu users that exist: the ids in a roster (CSV or XLSX, read like facesync\'s roster)' -r -F
complete -c facesync -n "__fish_facesync_using_subcommand emulate" -l users-column -d 'The --users-roster column holding the Feishu user ids' -r
complete -c facesync -n "__fish_facesync_using_subcommand emulate" -l absent-users -d 'Feishu users that do not exist, even when everyone else does (comma-separated)' -r
complete -c facesync -n "__fish_facesync_using_subcommand emulate" -l directory -d 'Feishu\'s contact directory for batch_get_id: a CSV with a header naming user_id and any of email, mobile, resigned (true/false); resigned users are in no access group' -r -F
complete -c facesync -n "__fish_facesync_using_subcommand emulate" -l groups -d 'VziCloud groups that exist from the start (comma-separated); others must be created' -r
complete -c facesync -n "__fish_facesync_using_subcommand emulate" -l token-lifetime -d 'How long a Feishu tenant access token lives (e.g. 2h, 90s)' -r
complete -c facesync -n "__fish_facesync_using_subcommand emulate" -l token-refresh-window -d 'A token asked for when less than this remains is a new one; earlier, the same one' -r
complete -c facesync -n "__fish_facesync_using_subcommand emulate" -l feishu-rate-limit -d 'Feishu: requests per second each API takes before HTTP 429, code 99991400, with x-ogw-ratelimit-limit and x-ogw-ratelimit-reset; default: no limit' -r
complete -c facesync -n "__fish_facesync_using_subcommand emulate" -l vzicloud-qps -d 'VziCloud: signed requests per second before 1016; default: no limit' -r
complete -c facesync -n "__fish_facesync_using_subcommand emulate" -l rate-window -d 'The window both rate limits count in (the limits are "N per this")' -r
complete -c facesync -n "__fish_facesync_using_subcommand emulate" -l latency -d 'Delay added before every answer (e.g. 250ms)' -r
complete -c facesync -n "__fish_facesync_using_subcommand emulate" -l error-rate -d 'Share of requests answered with a server error (Feishu HTTP 500; VziCloud HTTP 503, 1108), from 0 to 1' -r
complete -c facesync -n "__fish_facesync_using_subcommand emulate" -l drop-rate -d 'Share of requests whose connection is closed without an answer, from 0 to 1' -r
complete -c facesync -n "__fish_facesync_using_subcommand emulate" -l quota -d 'VziCloud: signed requests served in total before every further one gets 1017' -r
complete -c facesync -n "__fish_facesync_using_subcommand emulate" -l seed -d 'Seed of faults, tokens and ids: the same requests in the same order meet the same fate' -r
complete -c facesync -n "__fish_facesync_using_subcommand emulate" -l clock-offset -d 'Seconds (negative: behind) the emulator\'s clock is off: its Date headers, VziCloud\'s signature expiry (1002) and the terminals\' System/time' -r
complete -c facesync -n "__fish_facesync_using_subcommand emulate" -l feishu-missing-scopes -d 'Feishu scopes the app lacks (comma-separated: acs:users, contact:user.id:readonly): the APIs needing one answer 99991672' -r
complete -c facesync -n "__fish_facesync_using_subcommand emulate" -l hikvision-terminals -d 'Hikvision terminals served under /hikvision/NAME (comma-separated)' -r
complete -c facesync -n "__fish_facesync_using_subcommand emulate" -l hikvision-password -d 'The password of the terminals\' `admin` account (default: the demo password)' -r
complete -c facesync -n "__fish_facesync_using_subcommand emulate" -l hikvision-busy-time -d 'How long a face write keeps a terminal busy (deviceBusy to everything else meanwhile)' -r
complete -c facesync -n "__fish_facesync_using_subcommand emulate" -l hikvision-late-write -d 'How long after its OK a face shows in a terminal\'s searches' -r
complete -c facesync -n "__fish_facesync_using_subcommand emulate" -l hikvision-capacity -d 'Persons and faces a terminal holds at most' -r
complete -c facesync -n "__fish_facesync_using_subcommand emulate" -l hikvision-nonce-lifetime -d 'How long a terminal\'s digest nonce is good for' -r
complete -c facesync -n "__fish_facesync_using_subcommand emulate" -l log-file -d 'Also append the log to this file' -r -F
complete -c facesync -n "__fish_facesync_using_subcommand emulate" -l no-face-check -d 'Accept any decodable image, face or not (no 1490108 / 3002 / SubpicAnalysisModelingError for a missing face)'
complete -c facesync -n "__fish_facesync_using_subcommand emulate" -l json-log -d 'Log lines as JSON objects (for log collectors); RUST_LOG sets the level as usual'
complete -c facesync -n "__fish_facesync_using_subcommand emulate" -s q -l quiet -d 'No progress bars or progress lines; only warnings, errors and the summary'
complete -c facesync -n "__fish_facesync_using_subcommand emulate" -s h -l help -d 'Print help'
complete -c facesync -n "__fish_facesync_using_subcommand completions" -l log-file -d 'Also append the log to this file' -r -F
complete -c facesync -n "__fish_facesync_using_subcommand completions" -l json-log -d 'Log lines as JSON objects (for log collectors); RUST_LOG sets the level as usual'
complete -c facesync -n "__fish_facesync_using_subcommand completions" -s q -l quiet -d 'No progress bars or progress lines; only warnings, errors and the summary'
complete -c facesync -n "__fish_facesync_using_subcommand completions" -s h -l help -d 'Print help'
complete -c facesync -n "__fish_facesync_using_subcommand man" -l log-file -d 'Also append the log to this file' -r -F
complete -c facesync -n "__fish_facesync_using_subcommand man" -l json-log -d 'Log lines as JSON objects (for log collectors); RUST_LOG sets the level as usual'
complete -c facesync -n "__fish_facesync_using_subcommand man" -s q -l quiet -d 'No progress bars or progress lines; only warnings, errors and the summary'
complete -c facesync -n "__fish_facesync_using_subcommand man" -s h -l help -d 'Print help'
complete -c facesync -n "__fish_facesync_using_subcommand help; and not __fish_seen_subcommand_from demo init plan sync verify doctor report fetch status emulate completions man help" -f -a "demo" -d 'Run the whole job on the bundled fixtures, with a state DB in a temporary folder'
complete -c facesync -n "__fish_facesync_using_subcommand help; and not __fish_seen_subcommand_from demo init plan sync verify doctor report fetch status emulate completions man help" -f -a "init" -d 'Write a commented config.toml to start from'
complete -c facesync -n "__fish_facesync_using_subcommand help; and not __fish_seen_subcommand_from demo init plan sync verify doctor report fetch status emulate completions man help" -f -a "plan" -d 'Match, check and decide what `sync` would do, per person and target (no network)'
complete -c facesync -n "__fish_facesync_using_subcommand help; and not __fish_seen_subcommand_from demo init plan sync verify doctor report fetch status emulate completions man help" -f -a "sync" -d 'Upload what is new, changed or failed, to every enabled target'
complete -c facesync -n "__fish_facesync_using_subcommand help; and not __fish_seen_subcommand_from demo init plan sync verify doctor report fetch status emulate completions man help" -f -a "verify" -d 'Compare the roster and the state DB with what each target holds, and print the drift'
complete -c facesync -n "__fish_facesync_using_subcommand help; and not __fish_seen_subcommand_from demo init plan sync verify doctor report fetch status emulate completions man help" -f -a "doctor" -d 'Will tonight\'s run work? Checks the config, roster, photos, state DB and every target (reachable, credentials, permissions, room, clock) without changing anything'
complete -c facesync -n "__fish_facesync_using_subcommand help; and not __fish_seen_subcommand_from demo init plan sync verify doctor report fetch status emulate completions man help" -f -a "report" -d 'Every person\'s outcome per target, as CSV, JSON or a self-contained HTML page'
complete -c facesync -n "__fish_facesync_using_subcommand help; and not __fish_seen_subcommand_from demo init plan sync verify doctor report fetch status emulate completions man help" -f -a "fetch" -d 'Download every roster person\'s face from Feishu into a folder (backup, audit)'
complete -c facesync -n "__fish_facesync_using_subcommand help; and not __fish_seen_subcommand_from demo init plan sync verify doctor report fetch status emulate completions man help" -f -a "status" -d 'Counts per target and state, and the last runs, from the state DB; or one person\'s audit trail (`--person`)'
complete -c facesync -n "__fish_facesync_using_subcommand help; and not __fish_seen_subcommand_from demo init plan sync verify doctor report fetch status emulate completions man help" -f -a "emulate" -d 'Run the Feishu + VziCloud + Hikvision terminal emulator as a server, to try a config or a client against'
complete -c facesync -n "__fish_facesync_using_subcommand help; and not __fish_seen_subcommand_from demo init plan sync verify doctor report fetch status emulate completions man help" -f -a "completions" -d 'Print the shell completion script for bash, zsh, fish, powershell or elvish'
complete -c facesync -n "__fish_facesync_using_subcommand help; and not __fish_seen_subcommand_from demo init plan sync verify doctor report fetch status emulate completions man help" -f -a "man" -d 'Print the man page (roff) of facesync, or of one of its commands, made from these same definitions'
complete -c facesync -n "__fish_facesync_using_subcommand help; and not __fish_seen_subcommand_from demo init plan sync verify doctor report fetch status emulate completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
