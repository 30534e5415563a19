from fd2.cli import main

main()
