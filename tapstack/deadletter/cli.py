"""`tap deadletter ...`: list, count, show and replay the records every stage dead-lettered."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from tapstack.console import friendly_errors
from tapstack.deadletter import records as r
from tapstack.deadletter import replay as rp
from tapstack.native.errors import StackError

app = typer.Typer(no_args_is_help=True)

STAGE_HELP = "Only this stage: collector, process_orders, behaviour or loader."
REASON_HELP = "Only reasons containing this text (any case)."
SINCE_HELP = "Only those dead-lettered at or after this ISO 8601 time (no offset: local time)."


def _console() -> Console:
    # Made per command, so a COLUMNS set for the command (or a test's runner) is honoured.
    return Console()


def _since(text: str | None) -> datetime | None:
    try:
        return r.parse_since(text) if text else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since") from None


def _load(with_ledger: bool = True) -> tuple[list[r.DeadLetter], dict[str, dict]]:
    from tapstack.deadletter import kafka

    return kafka.dead_letters(), (kafka.ledger() if with_ledger else {})


def _row(letter: r.DeadLetter, ledger: dict[str, dict]) -> dict:
    entry = ledger.get(r.ledger_key(letter))
    return {
        "id": letter.id,
        "time": letter.time.isoformat(timespec="milliseconds"),
        "stage": letter.stage,
        "reason": r.mask_emails(letter.reason),
        "source": letter.source,
        "source_topic": letter.source_topic,
        "source_partition": letter.source_partition,
        "source_offset": letter.source_offset,
        "source_file": letter.source_file,
        "key": r.printable(letter.key) if letter.key is not None else None,
        "replayed": entry is not None,
        "replay": rp.describe(entry) if entry is not None else None,
        "replayed_to": (entry or {}).get("to"),
        "preview": r.preview(letter.value),
    }


@app.command("list")
@friendly_errors
def list_(
    stage: str = typer.Option(None, help=STAGE_HELP),
    reason: str = typer.Option(None, help=REASON_HELP),
    since: str = typer.Option(None, help=SINCE_HELP),
    limit: int = typer.Option(50, min=0, help="At most this many, the newest (0: all)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON array, for machines."),
) -> None:
    """List dead letters, one row each.

    Oldest first: id, time, stage, reason, source, whether it was replayed, and a preview of
    the value with e-mail addresses masked.
    """
    letters, ledger = _load()
    matching = r.select(letters, stage, reason, _since(since))
    shown = matching[-limit:] if limit else matching
    rows = [_row(d, ledger) for d in shown]
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False))
        return
    table = Table(title=f"Dead letters: {len(shown)} of {len(matching)} matching")
    for name in ("ID", "Time (UTC)", "Stage", "Reason", "Source", "Replayed", "Value"):
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(
            *(
                Text(str(value))
                for value in (
                    row["id"],
                    row["time"][:19].replace("T", " "),  # to the second; the zone is UTC
                    row["stage"],
                    row["reason"],
                    row["source"],
                    row["replay"].split(",")[0] if row["replay"] else "",  # show says more
                    row["preview"],
                )
            )
        )
    _console().print(table)


@app.command("count")
@friendly_errors
def count(
    stage: str = typer.Option(None, help=STAGE_HELP),
    reason: str = typer.Option(None, help=REASON_HELP),
    since: str = typer.Option(None, help=SINCE_HELP),
    as_json: bool = typer.Option(False, "--json", help="One JSON object, for machines."),
) -> None:
    """Count dead letters by stage and reason.

    Numbers and quoted values in a reason are set aside, so that like problems count
    together; a dead letter with several problems counts under each. Also how many of them
    were replayed.
    """
    letters, ledger = _load()
    chosen = r.select(letters, stage, reason, _since(since))
    rows = r.count(chosen, set(ledger))
    by_stage: dict[str, int] = {}
    for letter in chosen:
        by_stage[letter.stage] = by_stage.get(letter.stage, 0) + 1
    replayed = sum(r.ledger_key(d) in ledger for d in chosen)
    if as_json:
        summary = {"total": len(chosen), "replayed": replayed, "by_stage": by_stage, "rows": rows}
        typer.echo(json.dumps(summary, ensure_ascii=False))
        return
    table = Table(title=f"Dead letters: {len(chosen)}, replayed {replayed}")
    table.add_column("Stage")
    table.add_column("Reason", overflow="fold")
    table.add_column("Dead letters", justify="right")
    table.add_column("Replayed", justify="right")
    for row in rows:
        table.add_row(
            Text(row["stage"]), Text(row["reason"]), str(row["count"]), str(row["replayed"])
        )
    console = _console()
    console.print(table)
    if any(len(r.reason_kinds(d.reason)) > 1 for d in chosen):
        console.print("A dead letter with several problems counts under each of them.")


@app.command("show")
@friendly_errors
def show(
    dead_letter_id: str = typer.Argument(..., metavar="ID", help="partition/offset, e.g. 0/42"),
    mask: bool = typer.Option(False, help="Mask e-mail addresses (for sharing a screen)."),
    raw: bool = typer.Option(
        False, "--raw", help="Only the value's bytes as they are (to write a fix from)."
    ),
) -> None:
    """Show one dead letter whole.

    Every header, the key, whether and where it was replayed, and the value: indented when it
    is JSON, else its bytes escaped.
    """
    letters, ledger = _load()
    try:
        (letter,) = r.by_ids(letters, [dead_letter_id])
    except (KeyError, ValueError) as exc:
        raise StackError(str(exc).strip("'\"")) from None
    if raw:
        typer.echo(letter.value or b"", nl=False)
        return
    console = _console()
    table = Table(title=f"Dead letter {letter.id} of {letter.topic}", show_header=False)
    table.add_column("Header", style="bold")
    table.add_column("Value", overflow="fold")
    table.add_row("kafka timestamp", letter.time.isoformat(timespec="milliseconds"))
    for name, value in letter.headers.items():
        table.add_row(Text(name), Text(r.mask_emails(value) if mask else value))
    key = "(none)" if letter.key is None else r.printable(letter.key)
    table.add_row("key", Text(key))
    entry = ledger.get(r.ledger_key(letter))
    table.add_row("replayed", Text(rp.describe(entry) if entry is not None else "no"))
    console.print(table)
    console.print(Text(r.pretty_value(letter.value, mask=mask)))


@app.command("replay")
@friendly_errors
def replay(
    ids: list[str] = typer.Argument(None, metavar="ID", help="partition/offset, e.g. 0/42"),
    stage: str = typer.Option(None, help="Select by stage (with or without --reason)."),
    reason: str = typer.Option(None, help="Select by a part of the reason (any case)."),
    since: str = typer.Option(None, help=SINCE_HELP),
    value_file: Path = typer.Option(
        None,
        exists=True,
        dir_okay=False,
        help="Send this corrected value instead of the dead letter's (one record only).",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would be sent; send nothing."),
) -> None:
    """Send dead letters back into the flow after a fix.

    Each goes to the topic it was read from (the collector's lines to Topic_Purchase), keyed
    by its order id. A failure already replayed is not sent again: the ledger topic
    (topics.dead_letter_replays in contracts/settings.toml) says which were.
    """
    from tapstack import contracts
    from tapstack.deadletter import kafka

    if bool(ids) == bool(stage or reason or since):
        raise typer.BadParameter("give dead-letter ids, or --stage / --reason to select by")
    letters, ledger = _load()
    try:
        chosen = r.by_ids(letters, ids) if ids else r.select(letters, stage, reason, _since(since))
        value = r.corrected_value(value_file.read_bytes()) if value_file else None
        plans = rp.plan(chosen, ledger, contracts.topic("purchase"), value)
    except (KeyError, ValueError) as exc:
        raise StackError(str(exc).strip("'\"")) from None
    if not plans:
        raise StackError("no dead letter matches the selection")
    console = _console()
    if dry_run:
        outcomes = [rp.Outcome(p) for p in plans]
    else:
        kafka.ensure_ledger_topic()
        sender = kafka.KafkaSender()
        try:
            outcomes = rp.execute(plans, sender)
        finally:
            sender.close()
    _print_outcomes(console, outcomes, dry_run)
    if any(o.error for o in outcomes):
        raise typer.Exit(1)


def _print_outcomes(console: Console, outcomes, dry_run: bool) -> None:
    sent = sum(o.sent for o in outcomes)
    title = (
        f"Would replay {sum(not o.plan.skip for o in outcomes)} of {len(outcomes)}"
        if dry_run
        else f"Replayed {sent} of {len(outcomes)}"
    )
    table = Table(title=title)
    for name in ("ID", "Stage", "To", "Key", "Value", "Result"):
        table.add_column(name, overflow="fold")
    for o in outcomes:
        p = o.plan
        if p.skip:
            to, result = "", f"skipped: {p.skip}"
        elif o.offset is not None:
            to, result = f"{p.topic} {o.partition}/{o.offset}", o.error or "sent"
        else:
            to, result = p.topic, o.error or "would send"
        key = "" if p.key is None else r.printable(p.key)
        value = ("corrected" if p.corrected else "as dead-lettered") if not p.skip else ""
        cells = (p.letter.id, p.letter.stage, to, key, value, result)
        table.add_row(*(Text(str(c)) for c in cells))
    console.print(table)
