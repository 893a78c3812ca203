from quart_tasks.cli import main

main()
