"""The `fd2` command and its operator subcommands."""
