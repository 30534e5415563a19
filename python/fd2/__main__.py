from fd2.cli.main import main

main()
