from openreel.cli import main

main()
