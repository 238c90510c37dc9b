from .command import sandbox_command

sandbox_command(prog_name="python -m sandbox")
