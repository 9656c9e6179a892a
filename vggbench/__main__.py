from vggbench.cli import main

main()
