"""`python -m cli`: the command line where the project is not installed (the platform runs it from the source tree)."""
from cli import main

main(prog_name="prepr-automation")
