from tapstack.cli import app

app(prog_name="tap")
