# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_floe_global_optspecs
    string join \n log-format= q/quiet v/verbose h/help V/version
end

function __fish_floe_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_floe_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_floe_using_subcommand
    set -l cmd (__fish_floe_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c floe -n "__fish_floe_needs_command" -l log-format -d 'Log format on stderr' -r -f -a "text\t'Human-readable lines'
json\t'One JSON object per line'"
complete -c floe -n "__fish_floe_needs_command" -s q -l quiet -d 'Print only errors: no progress, no summary'
complete -c floe -n "__fish_floe_needs_command" -s v -l verbose -d 'More detail in logs (-v debug, -vv trace). `RUST_LOG` also works'
complete -c floe -n "__fish_floe_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c floe -n "__fish_floe_needs_command" -s V -l version -d 'Print version'
complete -c floe -n "__fish_floe_needs_command" -f -a "compile" -d 'Validate the manifest and the spec and write the compiled JSON artifact'
complete -c floe -n "__fish_floe_needs_command" -f -a "validate" -d 'Validate the manifest and the spec; write nothing'
complete -c floe -n "__fish_floe_needs_command" -f -a "ingest" -d 'Run and inspect ingestion entries'
complete -c floe -n "__fish_floe_needs_command" -f -a "schema" -d 'Print the JSON Schema of a file floe reads, for editors and CI'
complete -c floe -n "__fish_floe_needs_command" -f -a "maintenance" -d 'Maintain the destination tables'
complete -c floe -n "__fish_floe_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c floe -n "__fish_floe_using_subcommand compile" -s m -l manifest -d 'The platform manifest' -r -F
complete -c floe -n "__fish_floe_using_subcommand compile" -s s -l spec -d 'The pipeline spec' -r -F
complete -c floe -n "__fish_floe_using_subcommand compile" -s o -l output -d 'Where to write the artifact' -r -F
complete -c floe -n "__fish_floe_using_subcommand compile" -l dagster-definitions -d 'Also write a Python module defining one Dagster asset per ingestion entry' -r -F
complete -c floe -n "__fish_floe_using_subcommand compile" -l log-format -d 'Log format on stderr' -r -f -a "text\t'Human-readable lines'
json\t'One JSON object per line'"
complete -c floe -n "__fish_floe_using_subcommand compile" -l check -d 'Write nothing; exit 0 if the artifact on disk is current, 3 if missing or stale'
complete -c floe -n "__fish_floe_using_subcommand compile" -s q -l quiet -d 'Print only errors: no progress, no summary'
complete -c floe -n "__fish_floe_using_subcommand compile" -s v -l verbose -d 'More detail in logs (-v debug, -vv trace). `RUST_LOG` also works'
complete -c floe -n "__fish_floe_using_subcommand compile" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c floe -n "__fish_floe_using_subcommand compile" -s V -l version -d 'Print version'
complete -c floe -n "__fish_floe_using_subcommand validate" -s m -l manifest -d 'The platform manifest' -r -F
complete -c floe -n "__fish_floe_using_subcommand validate" -s s -l spec -d 'The pipeline spec' -r -F
complete -c floe -n "__fish_floe_using_subcommand validate" -l secrets-dir -d 'Folder of secret files, one file per reference' -r -F
complete -c floe -n "__fish_floe_using_subcommand validate" -l log-format -d 'Log format on stderr' -r -f -a "text\t'Human-readable lines'
json\t'One JSON object per line'"
complete -c floe -n "__fish_floe_using_subcommand validate" -l secrets -d 'Also check that every secret reference resolves (values are never printed)'
complete -c floe -n "__fish_floe_using_subcommand validate" -s q -l quiet -d 'Print only errors: no progress, no summary'
complete -c floe -n "__fish_floe_using_subcommand validate" -s v -l verbose -d 'More detail in logs (-v debug, -vv trace). `RUST_LOG` also works'
complete -c floe -n "__fish_floe_using_subcommand validate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c floe -n "__fish_floe_using_subcommand validate" -s V -l version -d 'Print version'
complete -c floe -n "__fish_floe_using_subcommand ingest; and not __fish_seen_subcommand_from run list state help" -l log-format -d 'Log format on stderr' -r -f -a "text\t'Human-readable lines'
json\t'One JSON object per line'"
complete -c floe -n "__fish_floe_using_subcommand ingest; and not __fish_seen_subcommand_from run list state help" -s q -l quiet -d 'Print only errors: no progress, no summary'
complete -c floe -n "__fish_floe_using_subcommand ingest; and not __fish_seen_subcommand_from run list state help" -s v -l verbose -d 'More detail in logs (-v debug, -vv trace). `RUST_LOG` also works'
complete -c floe -n "__fish_floe_using_subcommand ingest; and not __fish_seen_subcommand_from run list state help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c floe -n "__fish_floe_using_subcommand ingest; and not __fish_seen_subcommand_from run list state help" -s V -l version -d 'Print version'
complete -c floe -n "__fish_floe_using_subcommand ingest; and not __fish_seen_subcommand_from run list state help" -f -a "run" -d 'Load every selected ingestion entry into its Iceberg table'
complete -c floe -n "__fish_floe_using_subcommand ingest; and not __fish_seen_subcommand_from run list state help" -f -a "list" -d 'List the entries: name, type, destination, write disposition'
complete -c floe -n "__fish_floe_using_subcommand ingest; and not __fish_seen_subcommand_from run list state help" -f -a "state" -d 'Show the stored incremental state of each entry (or of NAME)'
complete -c floe -n "__fish_floe_using_subcommand ingest; and not __fish_seen_subcommand_from run list state help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c floe -n "__fish_floe_using_subcommand ingest; and __fish_seen_subcommand_from run" -l artifact -d 'Run a compiled artifact instead of compiling the manifest and spec in memory' -r -F
complete -c floe -n "__fish_floe_using_subcommand ingest; and __fish_seen_subcommand_from run" -s m -l manifest -d 'The platform manifest' -r -F
complete -c floe -n "__fish_floe_using_subcommand ingest; and __fish_seen_subcommand_from run" -s s -l spec -d 'The pipeline spec' -r -F
complete -c floe -n "__fish_floe_using_subcommand ingest; and __fish_seen_subcommand_from run" -l select -d 'Run only these entries (repeatable; `*` and `?` globs allowed)' -r
complete -c floe -n "__fish_floe_using_subcommand ingest; and __fish_seen_subcommand_from run" -l output -d 'Output format; `json` prints exactly one JSON report on stdout' -r -f -a "text\t'A table for people'
json\t'One JSON document on stdout, nothing else'"
complete -c floe -n "__fish_floe_using_subcommand ingest; and __fish_seen_subcommand_from run" -s j -l jobs -d 'Entries to run at once (default: number of cores, at most 4)' -r
complete -c floe -n "__fish_floe_using_subcommand ingest; and __fish_seen_subcommand_from run" -l secrets-dir -d 'Folder of secret files, one file per reference' -r -F
complete -c floe -n "__fish_floe_using_subcommand ingest; and __fish_seen_subcommand_from run" -l log-format -d 'Log format on stderr' -r -f -a "text\t'Human-readable lines'
json\t'One JSON object per line'"
complete -c floe -n "__fish_floe_using_subcommand ingest; and __fish_seen_subcommand_from run" -l dry-run -d 'Resolve everything (secrets included) and report the plan; touch no source or table'
complete -c floe -n "__fish_floe_using_subcommand ingest; and __fish_seen_subcommand_from run" -l full-refresh -d 'Ignore stored incremental state for the selected entries'
complete -c floe -n "__fish_floe_using_subcommand ingest; and __fish_seen_subcommand_from run" -s q -l quiet -d 'Print only errors: no progress, no summary'
complete -c floe -n "__fish_floe_using_subcommand ingest; and __fish_seen_subcommand_from run" -s v -l verbose -d 'More detail in logs (-v debug, -vv trace). `RUST_LOG` also works'
complete -c floe -n "__fish_floe_using_subcommand ingest; and __fish_seen_subcommand_from run" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c floe -n "__fish_floe_using_subcommand ingest; and __fish_seen_subcommand_from run" -s V -l version -d 'Print version'
complete -c floe -n "__fish_floe_using_subcommand ingest; and __fish_seen_subcommand_from list" -l artifact -d 'Run a compiled artifact instead of compiling the manifest and spec in memory' -r -F
complete -c floe -n "__fish_floe_using_subcommand ingest; and __fish_seen_subcommand_from list" -s m -l manifest -d 'The platform manifest' -r -F
complete -c floe -n "__fish_floe_using_subcommand ingest; and __fish_seen_subcommand_from list" -s s -l spec -d 'The pipeline spec' -r -F
complete -c floe -n "__fish_floe_using_subcommand ingest; and __fish_seen_subcommand_from list" -l output -r -f -a "text\t'A table for people'
json\t'One JSON document on stdout, nothing else'"
complete -c floe -n "__fish_floe_using_subcommand ingest; and __fish_seen_subcommand_from list" -l log-format -d 'Log format on stderr' -r -f -a "text\t'Human-readable lines'
json\t'One JSON object per line'"
complete -c floe -n "__fish_floe_using_subcommand ingest; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print only errors: no progress, no summary'
complete -c floe -n "__fish_floe_using_subcommand ingest; and __fish_seen_subcommand_from list" -s v -l verbose -d 'More detail in logs (-v debug, -vv trace). `RUST_LOG` also works'
complete -c floe -n "__fish_floe_using_subcommand ingest; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c floe -n "__fish_floe_using_subcommand ingest; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c floe -n "__fish_floe_using_subcommand ingest; and __fish_seen_subcommand_from state" -l artifact -d 'Run a compiled artifact instead of compiling the manifest and spec in memory' -r -F
complete -c floe -n "__fish_floe_using_subcommand ingest; and __fish_seen_subcommand_from state" -s m -l manifest -d 'The platform manifest' -r -F
complete -c floe -n "__fish_floe_using_subcommand ingest; and __fish_seen_subcommand_from state" -s s -l spec -d 'The pipeline spec' -r -F
complete -c floe -n "__fish_floe_using_subcommand ingest; and __fish_seen_subcommand_from state" -l output -r -f -a "text\t'A table for people'
json\t'One JSON document on stdout, nothing else'"
complete -c floe -n "__fish_floe_using_subcommand ingest; and __fish_seen_subcommand_from state" -l secrets-dir -d 'Folder of secret files, one file per reference' -r -F
complete -c floe -n "__fish_floe_using_subcommand ingest; and __fish_seen_subcommand_from state" -l log-format -d 'Log format on stderr' -r -f -a "text\t'Human-readable lines'
json\t'One JSON object per line'"
complete -c floe -n "__fish_floe_using_subcommand ingest; and __fish_seen_subcommand_from state" -s q -l quiet -d 'Print only errors: no progress, no summary'
complete -c floe -n "__fish_floe_using_subcommand ingest; and __fish_seen_subcommand_from state" -s v -l verbose -d 'More detail in logs (-v debug, -vv trace). `RUST_LOG` also works'
complete -c floe -n "__fish_floe_using_subcommand ingest; and __fish_seen_subcommand_from state" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c floe -n "__fish_floe_using_subcommand ingest; and __fish_seen_subcommand_from state" -s V -l version -d 'Print version'
complete -c floe -n "__fish_floe_using_subcommand ingest; and __fish_seen_subcommand_from help" -f -a "run" -d 'Load every selected ingestion entry into its Iceberg table'
complete -c floe -n "__fish_floe_using_subcommand ingest; and __fish_seen_subcommand_from help" -f -a "list" -d 'List the entries: name, type, destination, write disposition'
complete -c floe -n "__fish_floe_using_subcommand ingest; and __fish_seen_subcommand_from help" -f -a "state" -d 'Show the stored incremental state of each entry (or of NAME)'
complete -c floe -n "__fish_floe_using_subcommand ingest; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c floe -n "__fish_floe_using_subcommand schema" -l log-format -d 'Log format on stderr' -r -f -a "text\t'Human-readable lines'
json\t'One JSON object per line'"
complete -c floe -n "__fish_floe_using_subcommand schema" -s q -l quiet -d 'Print only errors: no progress, no summary'
complete -c floe -n "__fish_floe_using_subcommand schema" -s v -l verbose -d 'More detail in logs (-v debug, -vv trace). `RUST_LOG` also works'
complete -c floe -n "__fish_floe_using_subcommand schema" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c floe -n "__fish_floe_using_subcommand schema" -s V -l version -d 'Print version'
complete -c floe -n "__fish_floe_using_subcommand maintenance; and not __fish_seen_subcommand_from remove-orphans help" -l log-format -d 'Log format on stderr' -r -f -a "text\t'Human-readable lines'
json\t'One JSON object per line'"
complete -c floe -n "__fish_floe_using_subcommand maintenance; and not __fish_seen_subcommand_from remove-orphans help" -s q -l quiet -d 'Print only errors: no progress, no summary'
complete -c floe -n "__fish_floe_using_subcommand maintenance; and not __fish_seen_subcommand_from remove-orphans help" -s v -l verbose -d 'More detail in logs (-v debug, -vv trace). `RUST_LOG` also works'
complete -c floe -n "__fish_floe_using_subcommand maintenance; and not __fish_seen_subcommand_from remove-orphans help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c floe -n "__fish_floe_using_subcommand maintenance; and not __fish_seen_subcommand_from remove-orphans help" -s V -l version -d 'Print version'
complete -c floe -n "__fish_floe_using_subcommand maintenance; and not __fish_seen_subcommand_from remove-orphans help" -f -a "remove-orphans" -d 'Delete data files that no snapshot references (left by killed or failed loads)'
complete -c floe -n "__fish_floe_using_subcommand maintenance; and not __fish_seen_subcommand_from remove-orphans help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c floe -n "__fish_floe_using_subcommand maintenance; and __fish_seen_subcommand_from remove-orphans" -l artifact -d 'Run a compiled artifact instead of compiling the manifest and spec in memory' -r -F
complete -c floe -n "__fish_floe_using_subcommand maintenance; and __fish_seen_subcommand_from remove-orphans" -s m -l manifest -d 'The platform manifest' -r -F
complete -c floe -n "__fish_floe_using_subcommand maintenance; and __fish_seen_subcommand_from remove-orphans" -s s -l spec -d 'The pipeline spec' -r -F
complete -c floe -n "__fish_floe_using_subcommand maintenance; and __fish_seen_subcommand_from remove-orphans" -l select -d 'Only these entries\' tables (repeatable; `*` and `?` globs allowed)' -r
complete -c floe -n "__fish_floe_using_subcommand maintenance; and __fish_seen_subcommand_from remove-orphans" -l older-than -d 'Only files last modified more than this many seconds ago' -r
complete -c floe -n "__fish_floe_using_subcommand maintenance; and __fish_seen_subcommand_from remove-orphans" -l output -r -f -a "text\t'A table for people'
json\t'One JSON document on stdout, nothing else'"
complete -c floe -n "__fish_floe_using_subcommand maintenance; and __fish_seen_subcommand_from remove-orphans" -l secrets-dir -d 'Folder of secret files, one file per reference' -r -F
complete -c floe -n "__fish_floe_using_subcommand maintenance; and __fish_seen_subcommand_from remove-orphans" -l log-format -d 'Log format on stderr' -r -f -a "text\t'Human-readable lines'
json\t'One JSON object per line'"
complete -c floe -n "__fish_floe_using_subcommand maintenance; and __fish_seen_subcommand_from remove-orphans" -l dry-run -d 'Report the orphans; delete nothing'
complete -c floe -n "__fish_floe_using_subcommand maintenance; and __fish_seen_subcommand_from remove-orphans" -s q -l quiet -d 'Print only errors: no progress, no summary'
complete -c floe -n "__fish_floe_using_subcommand maintenance; and __fish_seen_subcommand_from remove-orphans" -s v -l verbose -d 'More detail in logs (-v debug, -vv trace). `RUST_LOG` also works'
complete -c floe -n "__fish_floe_using_subcommand maintenance; and __fish_seen_subcommand_from remove-orphans" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c floe -n "__fish_floe_using_subcommand maintenance; and __fish_seen_subcommand_from remove-orphans" -s V -l version -d 'Print version'
complete -c floe -n "__fish_floe_using_subcommand maintenance; and __fish_seen_subcommand_from help" -f -a "remove-orphans" -d 'Delete data files that no snapshot references (left by killed or failed loads)'
complete -c floe -n "__fish_floe_using_subcommand maintenance; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c floe -n "__fish_floe_using_subcommand help; and not __fish_seen_subcommand_from compile validate ingest schema maintenance help" -f -a "compile" -d 'Validate the manifest and the spec and write the compiled JSON artifact'
complete -c floe -n "__fish_floe_using_subcommand help; and not __fish_seen_subcommand_from compile validate ingest schema maintenance help" -f -a "validate" -d 'Validate the manifest and the spec; write nothing'
complete -c floe -n "__fish_floe_using_subcommand help; and not __fish_seen_subcommand_from compile validate ingest schema maintenance help" -f -a "ingest" -d 'Run and inspect ingestion entries'
complete -c floe -n "__fish_floe_using_subcommand help; and not __fish_seen_subcommand_from compile validate ingest schema maintenance help" -f -a "schema" -d 'Print the JSON Schema of a file floe reads, for editors and CI'
complete -c floe -n "__fish_floe_using_subcommand help; and not __fish_seen_subcommand_from compile validate ingest schema maintenance help" -f -a "maintenance" -d 'Maintain the destination tables'
complete -c floe -n "__fish_floe_using_subcommand help; and not __fish_seen_subcommand_from compile validate ingest schema maintenance help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c floe -n "__fish_floe_using_subcommand help; and __fish_seen_subcommand_from ingest" -f -a "run" -d 'Load every selected ingestion entry into its Iceberg table'
complete -c floe -n "__fish_floe_using_subcommand help; and __fish_seen_subcommand_from ingest" -f -a "list" -d 'List the entries: name, type, destination, write disposition'
complete -c floe -n "__fish_floe_using_subcommand help; and __fish_seen_subcommand_from ingest" -f -a "state" -d 'Show the stored incremental state of each entry (or of NAME)'
complete -c floe -n "__fish_floe_using_subcommand help; and __fish_seen_subcommand_from maintenance" -f -a "remove-orphans" -d 'Delete data files that no snapshot references (left by killed or failed loads)'
