"""Backup and restore: collections to one gzip file of MongoDB Extended JSON lines, and back.

File layout, one JSON object a line (canonical Extended JSON, so Decimal128, Int64, dates and
ObjectIds come back exactly):

    {"fidus_backup": 1, "database": ..., "created_at": ..., "collections": [...]}   header
    {"collection": "users", "document": {...}}                                      one per document
    {"manifest": {"users": {"count": 7, "sha256": "..."}, ...}}                     trailer

A collection's checksum is the SHA-256 of its documents' canonical JSON, one a line, in file
order. The file is written under a temporary name and renamed at the end, so a file with the
final name is always complete; restore checks every count and checksum before writing anything.

Restore loads each collection into a temporary collection (`<name>__restoring_<token>`,
created with the target's options and indexes, so the swapped-in collection keeps its
validator and indexes) and swaps the temporaries in with `renameCollection` only once every
one of them is complete: a restore that fails while loading replaces nothing. With
`--replace`, the collections about to be replaced are first backed up to a safety file, and
every failure names it.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import io
import os
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bson import SON, json_util
from bson.json_util import JSONMode, JSONOptions
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, OperationFailure, PyMongoError

from backend.ops._audit import record_script_run
from backend.ops._cli import (
    CommandRefused,
    Context,
    Outcome,
    ProgressSink,
    base_parser,
    error_line,
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


class RestoreFailed(CommandRefused):
    code = "RESTORE_FAILED"


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
    replaced are first backed up to a safety file in `safety_directory`. Nothing is replaced
    until every collection is loaded in full (see the module docstring).
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
    safety_note = (f"; safety backup of the replaced collections: {report.safety_backup}"
                   if report.safety_backup else "")
    token = uuid.uuid4().hex[:8]
    staging = {name: f"{name}__restoring_{token}" for name in names}
    try:
        for name in names:
            await _create_like(db, source=name, target=staging[name])
        await _load(db, path, staging, manifest.total, report, progress)
    except (PyMongoError, OSError) as error:
        await _drop_all(db, staging.values())
        raise RestoreFailed(f"restoring {path.name} failed: {_describe(error)}; nothing was "
                            f"replaced{safety_note}") from error
    swapped: list[str] = []
    for name in names:
        try:
            await _rename(db, staging[name], name)
        except PyMongoError as error:
            await _drop_all(db, [staging[n] for n in names if n not in swapped])
            done = ", ".join(swapped) or "nothing"
            raise RestoreFailed(f"restoring {path.name}: replacing {name} failed "
                                f"({_describe(error)}); already replaced: {done}; the others "
                                f"are unchanged{safety_note}") from error
        swapped.append(name)
    return report


async def _create_like(db: AsyncDatabase[dict[str, Any]], *, source: str, target: str) -> None:
    """Create `target` with the options (validator) and indexes `source` has, if it exists."""
    infos = [info async for info in await db.list_collections(filter={"name": source})]
    options = dict(infos[0].get("options", {})) if infos else {}
    await db.create_collection(target, **options)
    if not infos:
        return
    specs = [{k: v for k, v in dict(index).items() if k not in ("ns", "v")}
             async for index in await db[source].list_indexes()]
    specs = [spec for spec in specs if spec.get("name") != "_id_"]
    if specs:
        await db.command("createIndexes", target, indexes=specs)


async def _load(
    db: AsyncDatabase[dict[str, Any]],
    path: Path,
    staging: dict[str, str],
    total: int,
    report: RestoreReport,
    progress: ProgressSink,
) -> None:
    batches: dict[str, list[dict[str, Any]]] = {name: [] for name in staging}
    done = 0

    async def flush(name: str) -> None:
        nonlocal done
        batch = batches[name]
        if batch:
            try:
                await db[staging[name]].insert_many(batch, ordered=True,
                                                    bypass_document_validation=True)
            except BulkWriteError as error:
                errors = (error.details or {}).get("writeErrors") or [{}]
                at = report.restored.get(name, 0) + int(errors[0].get("index", 0)) + 1
                raise OperationFailure(f"{name}, document {at} of the file: "
                                       f"{_describe(error)}", error.code) from error
            done += len(batch)
            report.restored[name] = report.restored.get(name, 0) + len(batch)
            batches[name] = []
            progress(done, total)

    for item in _lines(path):
        target = item.get("collection") if isinstance(item, dict) else None
        if not isinstance(target, str) or target not in staging:
            continue
        batches[target].append(item["document"])
        if len(batches[target]) >= INSERT_BATCH:
            await flush(target)
    for name in staging:
        await flush(name)
        report.restored.setdefault(name, 0)


async def _rename(db: AsyncDatabase[dict[str, Any]], source: str, target: str) -> None:
    """Replace `target` by `source` in one step, keeping `source`'s options and indexes."""
    command = SON([("renameCollection", f"{db.name}.{source}"), ("to", f"{db.name}.{target}"),
                   ("dropTarget", True)])
    try:
        await db.client.admin.command(command)
    except OperationFailure as error:
        if "current database" not in str(error):
            raise
        # The embedded development server takes the command on the database itself only.
        await db.command(command)


async def _drop_all(db: AsyncDatabase[dict[str, Any]], names: Iterable[str]) -> None:
    for name in names:
        # A leftover temporary holds only copies, and its name says what it is.
        with contextlib.suppress(PyMongoError):
            await db.drop_collection(name)


def _describe(error: BaseException) -> str:
    return error_line(error, limit=200)


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
