from deepanon.cli import main

main()
