"""Backup and restore: collections to one gzip file of MongoDB Extended JSON lines, and back.

File layout, one JSON object a line (canonical Extended JSON, so Decimal128, Int64, dates and
ObjectIds come back exactly):

    {"fidus_backup": 1, "database": ..., "created_at": ..., "collections": [...]}   header
    {"collection": "users", "document": {...}}                                      one per document
    {"manifest": {"users": {"count": 7, "sha256": "..."}, ...}}                     trailer

A collection's checksum is the SHA-256 of its documents' canonical JSON, one a line, in file
order. The file is written under a temporary name and renamed at the end, so a file with the
final name is always complete; restore checks every count and checksum before writing anything.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bson import json_util
from bson.json_util import JSONMode, JSONOptions
from pymongo.asynchronous.database import AsyncDatabase

from backend.ops._audit import record_script_run
from backend.ops._cli import (
    CommandRefused,
    Context,
    Outcome,
    ProgressSink,
    base_parser,
    no_progress,
    run_command,
)
from backend.repositories.base import utcnow
from backend.settings import REPO_ROOT, Settings

FORMAT_VERSION = 1
INSERT_BATCH = 1000
DEFAULT_DIRECTORY = REPO_ROOT / "var" / "backups"

_JSON = JSONOptions(json_mode=JSONMode.CANONICAL, tz_aware=True, tzinfo=UTC)


class BackupCorrupt(CommandRefused):
    code = "BACKUP_CORRUPT"


@dataclass(frozen=True, slots=True)
class CollectionEntry:
    name: str
    count: int
    sha256: str


@dataclass(slots=True)
class BackupManifest:
    path: Path
    database: str
    created_at: datetime
    collections: list[CollectionEntry] = field(default_factory=list)

    def entry(self, name: str) -> CollectionEntry:
        for item in self.collections:
            if item.name == name:
                return item
        raise KeyError(name)

    @property
    def total(self) -> int:
        return sum(item.count for item in self.collections)


def default_path(database: str, label: str = "backup", *, directory: Path | None = None) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return (directory or DEFAULT_DIRECTORY) / f"{database}-{label}-{stamp}.jsonl.gz"


def _dump(value: Any) -> str:
    return json_util.dumps(value, json_options=_JSON)


async def _collection_names(
    db: AsyncDatabase[dict[str, Any]], wanted: Sequence[str] | None
) -> list[str]:
    present = sorted(n for n in await db.list_collection_names() if not n.startswith("system."))
    if wanted is None:
        return present
    return list(dict.fromkeys(wanted))


async def backup(
    db: AsyncDatabase[dict[str, Any]],
    path: Path,
    *,
    collections: Sequence[str] | None = None,
    progress: ProgressSink = no_progress,
) -> BackupManifest:
    """Write `collections` (default: every collection present) to `path`; return the manifest.

    A named collection that does not exist is backed up as empty, so the manifest says so.
    """
    names = await _collection_names(db, collections)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    manifest = BackupManifest(path=path, database=db.name, created_at=utcnow())
    total = 0
    with open(partial, "wb") as raw:
        with (
            gzip.GzipFile(fileobj=raw, mode="wb") as zipped,
            io.TextIOWrapper(zipped, encoding="utf-8", newline="\n") as out,
        ):
            header = {"fidus_backup": FORMAT_VERSION, "database": db.name,
                      "created_at": manifest.created_at, "collections": names}
            out.write(_dump(header) + "\n")
            for name in names:
                digest = hashlib.sha256()
                count = 0
                async for doc in db[name].find({}, sort=[("_id", 1)]):
                    text = _dump(doc)
                    digest.update(text.encode() + b"\n")
                    out.write('{"collection": ' + _dump(name) + ', "document": ' + text + "}\n")
                    count += 1
                    total += 1
                    if total % 500 == 0:
                        progress(total)
                manifest.collections.append(CollectionEntry(name, count, digest.hexdigest()))
            trailer = {item.name: {"count": item.count, "sha256": item.sha256}
                       for item in manifest.collections}
            out.write(_dump({"manifest": trailer}) + "\n")
        # The rename below must never publish a file whose bytes are still in the page cache.
        raw.flush()
        os.fsync(raw.fileno())
    os.replace(partial, path)
    progress(total, total)
    return manifest


def _lines(path: Path) -> Iterator[Any]:
    try:
        with gzip.open(path, "rt", encoding="utf-8") as source:
            for number, line in enumerate(source, start=1):
                try:
                    yield json_util.loads(line, json_options=_JSON)
                except ValueError as error:
                    raise BackupCorrupt(
                        f"{path.name}: line {number} is not Extended JSON"
                    ) from error
    except (OSError, EOFError) as error:
        if isinstance(error, FileNotFoundError):
            raise
        raise BackupCorrupt(f"{path.name}: not a readable gzip file ({error})") from error


def verify_file(path: Path) -> BackupManifest:
    """Read the whole file and check every collection's count and checksum against the manifest."""
    lines = _lines(path)
    header = next(lines, None)
    if not isinstance(header, dict) or header.get("fidus_backup") != FORMAT_VERSION:
        raise BackupCorrupt(f"{path.name}: not a Fidus backup (no header)")
    digests: dict[str, Any] = {name: hashlib.sha256() for name in header["collections"]}
    counts: dict[str, int] = dict.fromkeys(header["collections"], 0)
    trailer: dict[str, Any] | None = None
    for item in lines:
        if trailer is not None:
            raise BackupCorrupt(f"{path.name}: data after the manifest")
        if "manifest" in item:
            trailer = item["manifest"]
            continue
        name = item.get("collection")
        if name not in digests:
            raise BackupCorrupt(f"{path.name}: collection {name!r} is not in the header")
        digests[name].update(_dump(item["document"]).encode() + b"\n")
        counts[name] += 1
    if trailer is None:
        raise BackupCorrupt(f"{path.name}: no manifest (the file is truncated)")
    manifest = BackupManifest(path=path, database=str(header["database"]),
                              created_at=header["created_at"])
    for name in header["collections"]:
        declared = trailer.get(name)
        if declared is None:
            raise BackupCorrupt(f"{path.name}: the manifest does not list {name}")
        actual = digests[name].hexdigest()
        if declared["count"] != counts[name] or declared["sha256"] != actual:
            raise BackupCorrupt(
                f"{path.name}: {name} does not match its manifest "
                f"({counts[name]} documents, manifest says {declared['count']}; checksum "
                f"{'ok' if declared['sha256'] == actual else 'differs'})"
            )
        manifest.collections.append(CollectionEntry(name, counts[name], actual))
    return manifest


@dataclass(slots=True)
class RestoreReport:
    manifest: BackupManifest
    restored: dict[str, int]
    replaced: dict[str, int]
    safety_backup: Path | None
    dry_run: bool


async def restore(
    db: AsyncDatabase[dict[str, Any]],
    path: Path,
    *,
    collections: Sequence[str] | None = None,
    replace: bool = False,
    dry_run: bool = False,
    safety_directory: Path | None = None,
    progress: ProgressSink = no_progress,
) -> RestoreReport:
    """Restore `path` exactly (validation bypassed: the documents are put back as they were).

    Refuses, before writing anything, when the file fails its checksums or a target collection
    holds documents and `replace` is not given. With `replace`, the collections about to be
    emptied are first backed up to a safety file in `safety_directory`.
    """
    manifest = verify_file(path)
    names = [c.name for c in manifest.collections]
    if collections is not None:
        unknown = sorted(set(collections) - set(names))
        if unknown:
            raise CommandRefused(f"{path.name} holds no collection named {', '.join(unknown)}")
        names = [n for n in names if n in set(collections)]
    occupied = {name: await db[name].count_documents({}) for name in names}
    occupied = {name: count for name, count in occupied.items() if count}
    if occupied and not replace:
        listing = ", ".join(f"{name} ({count} documents)" for name, count in occupied.items())
        raise CommandRefused(
            f"refusing to restore over non-empty collections: {listing}; "
            "pass --replace to replace them (a safety backup is taken first)"
        )
    report = RestoreReport(manifest, {}, dict(occupied), None, dry_run)
    if dry_run:
        report.restored = {name: manifest.entry(name).count for name in names}
        return report
    if occupied:
        safety = default_path(db.name, "before-restore", directory=safety_directory)
        await backup(db, safety, collections=list(occupied))
        report.safety_backup = safety
        for name in occupied:
            await db[name].delete_many({})
    wanted = set(names)
    batches: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    done = 0

    async def flush(name: str) -> None:
        nonlocal done
        batch = batches[name]
        if batch:
            await db[name].insert_many(batch, ordered=True, bypass_document_validation=True)
            done += len(batch)
            report.restored[name] = report.restored.get(name, 0) + len(batch)
            batches[name] = []
            progress(done, manifest.total)

    for item in _lines(path):
        target = item.get("collection") if isinstance(item, dict) else None
        if not isinstance(target, str) or target not in wanted:
            continue
        name = target
        batches[name].append(item["document"])
        if len(batches[name]) >= INSERT_BATCH:
            await flush(name)
    for name in names:
        await flush(name)
        report.restored.setdefault(name, 0)
    return report


# command line -----------------------------------------------------------------------------


def _split(value: str | None) -> list[str] | None:
    return [part.strip() for part in value.split(",") if part.strip()] if value else None


def backup_parser() -> argparse.ArgumentParser:
    parser = base_parser("make backup", "Back up collections to one gzip file of Extended JSON "
                         "lines with a manifest of counts and SHA-256 checksums.", writes=False)
    parser.add_argument("--out", type=Path, help="file to write (default: var/backups/...)")
    parser.add_argument("--collections", help="comma-separated names (default: all)")
    return parser


async def _backup_command(ctx: Context) -> Outcome:
    path = ctx.args.out or default_path(ctx.db.name)
    with ctx.track("backing up") as progress:
        manifest = await backup(ctx.db, path, collections=_split(ctx.args.collections),
                                progress=progress)
    rows = [(c.name, c.count, c.sha256[:16]) for c in manifest.collections]
    return Outcome(
        title=f"backup written to {path}",
        columns=("collection", "documents", "sha256 (prefix)"),
        rows=rows,
        data={"path": str(path), "total": manifest.total,
              "collections": {c.name: {"count": c.count, "sha256": c.sha256}
                              for c in manifest.collections}},
    )


def backup_main(argv: Sequence[str] | None = None, *, settings: Settings | None = None) -> int:
    return run_command(argv, parser=backup_parser(), handler=_backup_command, settings=settings)


def restore_parser() -> argparse.ArgumentParser:
    parser = base_parser("make restore", "Restore a backup file exactly, after checking its "
                         "manifest. Refuses non-empty collections unless --replace.", writes=True)
    parser.add_argument("file", type=Path, help="backup file (.jsonl.gz)")
    parser.add_argument("--collections", help="restore only these (comma-separated)")
    parser.add_argument("--replace", action="store_true",
                        help="empty non-empty target collections first (after a safety backup)")
    return parser


async def _restore_command(ctx: Context) -> Outcome:
    run_id = f"restore-{utcnow():%Y%m%dT%H%M%S}"
    with ctx.track("restoring") as progress:
        report = await restore(ctx.db, ctx.args.file, collections=_split(ctx.args.collections),
                               replace=ctx.args.replace, dry_run=ctx.args.dry_run,
                               progress=progress)
    if not report.dry_run:
        await record_script_run(
            ctx.db, script="restore", action="data_script.restore", run_id=run_id,
            summary={"file": str(ctx.args.file), "restored": report.restored,
                     "replaced": report.replaced,
                     "safety_backup": str(report.safety_backup) if report.safety_backup else None},
        )
    rows = [(name, count, report.replaced.get(name, 0)) for name, count in report.restored.items()]
    messages = [f"safety backup of the replaced collections: {report.safety_backup}"] \
        if report.safety_backup else []
    verb = "would restore" if report.dry_run else "restored"
    return Outcome(
        title=f"{verb} {ctx.args.file.name} (checksums verified)",
        columns=("collection", verb, "replaced"),
        rows=rows,
        data={"file": str(ctx.args.file), "dry_run": report.dry_run, "restored": report.restored,
              "replaced": report.replaced,
              "safety_backup": str(report.safety_backup) if report.safety_backup else None},
        messages=messages,
    )


def restore_main(argv: Sequence[str] | None = None, *, settings: Settings | None = None) -> int:
    return run_command(argv, parser=restore_parser(), handler=_restore_command, settings=settings)
