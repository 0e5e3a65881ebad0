"""Backup and restore: the database to one file of MongoDB Extended JSON lines, and back.

File layout, one JSON object a line (canonical Extended JSON, so Decimal128, Int64, dates and
ObjectIds come back exactly), gzip-compressed and, when `BACKUP_ENCRYPTION_KEY` is set, sealed
with AES-256-GCM (`backend/ops/backup_cipher.py`; required in production):

    {"fidus_backup": 2, "database": ..., "created_at": ..., "collections": [...],
     "consistency": "snapshot" | "sequential", "complete": true}                   header
    {"collection": "users", "document": {...}}                                     one per document
    {"manifest": {"users": {"count": 7, "sha256": "...", "started_at": ...,
                  "finished_at": ...}, ...}, "consistency": {...}}                 trailer

A collection's checksum is the SHA-256 of its documents' canonical JSON, one a line, in file
order (`_id` order). The file is written under a temporary name and renamed at the end, so a
file with the final name is always complete; restore authenticates the whole file and checks
every count and checksum before writing anything.

Consistency while the API and the worker write. An audited change carries its audit record
inside the changed document (`_outbox`) until the relay copies it into `audit_log`, so a
document and its pending record are always read together. Beyond that:

* On a replica set or sharded cluster, every collection is read in one snapshot session: the
  whole file is the database at one cluster time, written in the trailer (`cluster_time`).
  Snapshot reads are kept for `minSnapshotHistoryWindowInSeconds` (300 s by default); a longer
  backup fails with SnapshotTooOld and is retried at the next slot, so raise that server
  parameter when a backup takes longer.
* On a standalone server (and the embedded one), which cannot read at one time, collections
  are read one after another in the order `read_order()` gives: what refers to another
  collection before what it refers to (`users` last, since everything names a user), the
  audited collections close to the end, and `audit_log` after every one of them, so a record
  relayed out of a document before that document was read is in the audit log read later.
  Records that describe a change the file does not hold (made after its document was read) are
  left out of the file, by the rules of `DumpedState.later_than_dump`; the trailer gives the
  rule and the count. Restoring then relays the pending outbox records into `audit_log` (a
  record also present there is not copied twice), so the restored database holds every
  document with its audit trail and no record of a change it does not hold. The money
  engine's collections are read before the investments, schedule items before ledger
  entries: an investment recorded during the backup may come without its schedule or
  subscription entry, and a payout made during it may come as a ledger entry whose item
  still reads due. Both are derived from what the file holds, and restoring completes them
  (`ContractService.complete_interrupted`, keyed like every contract step); the reverse
  order could leave a paid item without its entry, which nothing could rebuild.

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
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from bson import SON, Timestamp, json_util
from bson.json_util import JSONMode, JSONOptions
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, OperationFailure, PyMongoError

from backend.db.schema_registry import get_registry
from backend.models import STORED_MODELS
from backend.models._base import OUTBOX_FIELD
from backend.models.backup_runs import (
    BackupConsistency,
    BackupOutcome,
    BackupRun,
    BackupRunKind,
    BackupTrigger,
)
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
from backend.ops.backup_cipher import (
    CHUNK_SIZE,
    MAGIC,
    BackupCorrupt,
    BackupKeyMismatch,
    BackupKeys,
    DecryptingReader,
    EncryptingWriter,
)
from backend.repositories.backup_runs import BackupRunRepository
from backend.repositories.base import Clock, utcnow
from backend.services import Services
from backend.services.audit import Actor
from backend.settings import REPO_ROOT, Settings

__all__ = [
    "BackupCorrupt",
    "BackupKeyMismatch",
    "BackupManifest",
    "CollectionEntry",
    "RestoreFailed",
    "backup",
    "restore",
    "verify_file",
]

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
INSERT_BATCH = 1000
DEFAULT_DIRECTORY = REPO_ROOT / "var" / "backups"
PLAIN_SUFFIX = ".jsonl.gz"
ENCRYPTED_SUFFIX = ".jsonl.gz.enc"
#: Temporaries of a restore in progress (or left by a crashed one): never backed up.
RESTORING_MARK = "__restoring_"
#: Read last, in this order, on a server without snapshot reads (see the module docstring).
READ_LAST = ("schedule_items", "ledger_entries", "investments", "mt5_accounts", "users",
             "audit_log")
#: How long an audited write may take between drafting its record (`at`) and landing.
WRITE_GRACE = timedelta(seconds=60)
AUDIT_RULE = (
    "sequential reads: audited collections before audit_log; an audit record is left out "
    "when it is not carried in a backed-up document's outbox and (a) its document was backed "
    "up at a lower version than the record's `after.version` (or, unversioned, the record is "
    "an update drafted after that collection's read began), or (b) its document or its actor "
    "is not in the backup and the record was drafted after the backup started less "
    f"{int(WRITE_GRACE.total_seconds())} s"
)

_JSON = JSONOptions(json_mode=JSONMode.CANONICAL, tz_aware=True, tzinfo=UTC)

#: Called once a collection is in the file (a progress display, or a test's writers).
AfterCollection = Callable[["CollectionEntry"], Awaitable[None]]


class RestoreFailed(CommandRefused):
    code = "RESTORE_FAILED"


@dataclass(frozen=True, slots=True)
class CollectionEntry:
    name: str
    count: int
    sha256: str
    started_at: datetime | None = None
    finished_at: datetime | None = None


@dataclass(slots=True)
class BackupManifest:
    path: Path
    database: str
    created_at: datetime
    collections: list[CollectionEntry] = field(default_factory=list)
    consistency: BackupConsistency | None = None
    cluster_time: Timestamp | None = None
    audit_records_left_out: int = 0
    complete: bool = False
    encrypted: bool = False
    size_bytes: int = 0

    def entry(self, name: str) -> CollectionEntry:
        for item in self.collections:
            if item.name == name:
                return item
        raise KeyError(name)

    @property
    def total(self) -> int:
        return sum(item.count for item in self.collections)


def default_path(database: str, label: str = "backup", *, directory: Path | None = None,
                 encrypted: bool = False, at: datetime | None = None) -> Path:
    stamp = (at or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%fZ")
    suffix = ENCRYPTED_SUFFIX if encrypted else PLAIN_SUFFIX
    return (directory or DEFAULT_DIRECTORY) / f"{database}-{label}-{stamp}{suffix}"


def _dump(value: Any) -> str:
    return json_util.dumps(value, json_options=_JSON)


def _audited_collections() -> frozenset[str]:
    return frozenset(name for name, model in STORED_MODELS.items() if model.audited)


def read_order(names: Iterable[str]) -> list[str]:
    """The order collections are read in without a snapshot: what refers to another collection
    before what it refers to.

    The unaudited collections first (deals, equity, sessions, quarantine... refer to accounts,
    investments, users), then the audited ones, then each GridFS bucket's files before its
    chunks (a file's document is written after its chunks; a KYC document's after its file),
    then `READ_LAST`: investments, MT5 accounts, users (everything names a user) and the audit
    log after every audited collection.
    """
    unique = set(names)
    last = [n for n in READ_LAST if n in unique]
    buckets = sorted(n.removesuffix(".files") for n in unique
                     if n.endswith(".files") and n.removesuffix(".files") + ".chunks" in unique)
    gridfs = [n for bucket in buckets for n in (f"{bucket}.files", f"{bucket}.chunks")]
    audited = sorted((unique & _audited_collections()) - set(last))
    others = sorted(unique - set(last) - set(gridfs) - set(audited))
    return others + audited + gridfs + last


async def _collection_names(
    db: AsyncDatabase[dict[str, Any]], wanted: Sequence[str] | None
) -> list[str]:
    if wanted is not None:
        return list(dict.fromkeys(wanted))
    present = {n for n in await db.list_collection_names()
               if not n.startswith("system.") and RESTORING_MARK not in n}
    # Every declared collection is in a whole-database backup, empty when it does not exist
    # yet, so a new schema file is backed up without anyone listing it.
    return read_order(present | set(get_registry()))


async def reads_at_one_time(db: AsyncDatabase[dict[str, Any]]) -> bool:
    """Whether the server can read every collection at one cluster time (snapshot reads:
    a replica set or sharded cluster of MongoDB 5.0 or newer)."""
    hello = await db.client.admin.command("hello")
    clustered = bool(hello.get("setName")) or hello.get("msg") == "isdbgrid"
    return clustered and int(hello.get("maxWireVersion", 0)) >= 13


@dataclass(slots=True)
class DumpedState:
    """What the audited collections of a sequential backup held when each was read."""

    started_at: datetime
    read_started: dict[str, datetime] = field(default_factory=dict)
    #: Document id -> (collection, version or None).
    documents: dict[Any, tuple[str, int | None]] = field(default_factory=dict)
    carried: set[Any] = field(default_factory=set)
    users: set[Any] = field(default_factory=set)

    def note(self, collection: str, document: dict[str, Any]) -> None:
        version = document.get("version")
        self.documents[document["_id"]] = (collection, version if isinstance(version, int)
                                           else None)
        for entry in document.get(OUTBOX_FIELD) or ():
            if isinstance(entry, dict) and "_id" in entry:
                self.carried.add(entry["_id"])
        if collection == "users":
            self.users.add(document["_id"])

    def later_than_dump(self, record: dict[str, Any]) -> bool:
        """Whether an audit record describes a change the backup does not hold."""
        if record.get("_id") in self.carried:
            return False  # its document carries it: restored together, relayed once
        at = record.get("at")
        recent = isinstance(at, datetime) and at >= self.started_at - WRITE_GRACE
        after, before = record.get("after"), record.get("before")
        snapshots = [s for s in (after, before) if isinstance(s, dict)]
        document_id = next((s["_id"] for s in snapshots if "_id" in s), None)
        if document_id is not None:
            dumped = self.documents.get(document_id)
            if dumped is None:
                return recent
            collection, version = dumped
            record_version = after.get("version") if isinstance(after, dict) else None
            if isinstance(record_version, int) and version is not None:
                return record_version > version
            read_at = self.read_started[collection]
            if before is not None and isinstance(at, datetime) and at > read_at:
                return True
        actor = record.get("actor_id")
        return actor is not None and actor not in self.users and recent


@contextlib.contextmanager
def _writer(partial: Path, keys: BackupKeys | None) -> Iterator[TextIO]:
    with open(partial, "wb") as raw:
        sealed = EncryptingWriter(raw, keys) if keys is not None else None
        with (
            gzip.GzipFile(fileobj=sealed or raw, mode="wb") as zipped,
            io.TextIOWrapper(zipped, encoding="utf-8", newline="\n") as out,
        ):
            yield out
        if sealed is not None:
            sealed.close()
        # The rename that follows must never publish a file whose bytes are still in the page
        # cache.
        raw.flush()
        os.fsync(raw.fileno())


async def _documents(db: AsyncDatabase[dict[str, Any]], name: str,
                     session: AsyncClientSession | None) -> AsyncIterator[dict[str, Any]]:
    async for doc in db[name].find({}, sort=[("_id", 1)], session=session):
        yield doc


async def backup(
    db: AsyncDatabase[dict[str, Any]],
    path: Path,
    *,
    collections: Sequence[str] | None = None,
    keys: BackupKeys | None = None,
    consistency: BackupConsistency | None = None,
    clock: Clock = utcnow,
    progress: ProgressSink = no_progress,
    after_collection: AfterCollection | None = None,
) -> BackupManifest:
    """Write `collections` (default: every collection, see `_collection_names`) to `path`,
    encrypted when `keys` are given; return the manifest.

    `consistency` defaults to what the server can do (`reads_at_one_time`). A named collection
    that does not exist is backed up as empty, so the manifest says so.
    """
    names = await _collection_names(db, collections)
    if consistency is None:
        consistency = (BackupConsistency.SNAPSHOT if await reads_at_one_time(db)
                       else BackupConsistency.SEQUENTIAL)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    manifest = BackupManifest(path=path, database=db.name, created_at=clock(),
                              consistency=consistency, complete=collections is None,
                              encrypted=keys is not None)
    state = DumpedState(started_at=manifest.created_at)
    audited = _audited_collections()
    # Only a whole-database file can tell a record of a later change from one whose document
    # is simply not in the file.
    prune = consistency is BackupConsistency.SEQUENTIAL and manifest.complete
    total = 0
    try:
        with _writer(partial, keys) as out:
            header = {"fidus_backup": FORMAT_VERSION, "database": db.name,
                      "created_at": manifest.created_at, "collections": names,
                      "consistency": consistency.value, "complete": manifest.complete}
            out.write(_dump(header) + "\n")
            async with contextlib.AsyncExitStack() as stack:
                session = None
                if consistency is BackupConsistency.SNAPSHOT:
                    session = await stack.enter_async_context(
                        db.client.start_session(snapshot=True))
                for name in names:
                    digest = hashlib.sha256()
                    count = 0
                    started = clock()
                    state.read_started[name] = started
                    async for doc in _documents(db, name, session):
                        if prune and name in audited:
                            state.note(name, doc)
                        if prune and name == "audit_log" and state.later_than_dump(doc):
                            manifest.audit_records_left_out += 1
                            continue
                        text = _dump(doc)
                        digest.update(text.encode() + b"\n")
                        out.write('{"collection": ' + _dump(name) + ', "document": ' + text
                                  + "}\n")
                        count += 1
                        total += 1
                        if total % 500 == 0:
                            progress(total)
                    if session is not None and manifest.cluster_time is None:
                        manifest.cluster_time = getattr(session, "_snapshot_time", None)
                    entry = CollectionEntry(name, count, digest.hexdigest(), started, clock())
                    manifest.collections.append(entry)
                    if after_collection is not None:
                        await after_collection(entry)
            out.write(_dump(_trailer(manifest)) + "\n")
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise
    os.replace(partial, path)
    manifest.size_bytes = path.stat().st_size
    progress(total, total)
    return manifest


def _trailer(manifest: BackupManifest) -> dict[str, Any]:
    consistency: dict[str, Any] = {
        "mode": manifest.consistency.value if manifest.consistency else None,
        "read_order": [item.name for item in manifest.collections],
    }
    if manifest.consistency is BackupConsistency.SNAPSHOT:
        consistency["cluster_time"] = manifest.cluster_time
    elif manifest.complete:
        consistency["audit_records_left_out"] = manifest.audit_records_left_out
        consistency["rule"] = AUDIT_RULE
    else:
        consistency["rule"] = ("chosen collections read one after another; no audit record "
                               "left out")
    return {
        "manifest": {item.name: {"count": item.count, "sha256": item.sha256,
                                 "started_at": item.started_at,
                                 "finished_at": item.finished_at}
                     for item in manifest.collections},
        "consistency": consistency,
    }


# reading ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BackupSource:
    """A backup file and how to open it: the keys, and whether a plain file is acceptable
    where keys are configured (files written before encryption was turned on)."""

    path: Path
    keys: BackupKeys | None = None
    allow_unencrypted: bool = False

    @contextlib.contextmanager
    def text(self) -> Iterator[TextIO]:
        name = self.path.name
        with open(self.path, "rb") as raw:
            head = raw.read(len(MAGIC))
            raw.seek(0)
            source: io.BufferedReader
            if head.startswith(MAGIC):
                source = io.BufferedReader(DecryptingReader(raw, self.keys, name=name),
                                           CHUNK_SIZE)
            elif head[:2] == b"\x1f\x8b":
                if self.keys is not None and not self.allow_unencrypted:
                    raise BackupKeyMismatch(
                        f"{name} is not encrypted, and BACKUP_ENCRYPTION_KEY is set: refusing "
                        "it (pass --allow-unencrypted for a file written before encryption)")
                source = raw
            else:
                raise BackupCorrupt(f"{name}: not a Fidus backup (neither encrypted nor gzip)")
            with (
                gzip.GzipFile(fileobj=source, mode="rb") as zipped,
                io.TextIOWrapper(zipped, encoding="utf-8") as text,
            ):
                yield text

    @property
    def encrypted(self) -> bool:
        with open(self.path, "rb") as raw:
            return raw.read(len(MAGIC)).startswith(MAGIC)

    def lines(self) -> Iterator[Any]:
        name = self.path.name
        try:
            with self.text() as source:
                for number, line in enumerate(source, start=1):
                    try:
                        yield json_util.loads(line, json_options=_JSON)
                    except ValueError as error:
                        raise BackupCorrupt(
                            f"{name}: line {number} is not Extended JSON") from error
        except (OSError, EOFError) as error:
            if isinstance(error, FileNotFoundError):
                raise
            raise BackupCorrupt(f"{name}: not a readable gzip file ({error})") from error


def _source(path: Path | BackupSource) -> BackupSource:
    return path if isinstance(path, BackupSource) else BackupSource(path)


def verify_file(path: Path | BackupSource) -> BackupManifest:
    """Read (and authenticate) the whole file and check every collection's count and checksum
    against the manifest."""
    source = _source(path)
    name = source.path.name
    lines = source.lines()
    header = next(lines, None)
    if not isinstance(header, dict) or header.get("fidus_backup") not in READABLE_VERSIONS:
        raise BackupCorrupt(f"{name}: not a Fidus backup (no header)")
    digests: dict[str, Any] = {n: hashlib.sha256() for n in header["collections"]}
    counts: dict[str, int] = dict.fromkeys(header["collections"], 0)
    trailer: dict[str, Any] | None = None
    for item in lines:
        if trailer is not None:
            raise BackupCorrupt(f"{name}: data after the manifest")
        if "manifest" in item:
            trailer = item
            continue
        collection = item.get("collection")
        if collection not in digests:
            raise BackupCorrupt(f"{name}: collection {collection!r} is not in the header")
        digests[collection].update(_dump(item["document"]).encode() + b"\n")
        counts[collection] += 1
    if trailer is None:
        raise BackupCorrupt(f"{name}: no manifest (the file is truncated)")
    declared_all: dict[str, Any] = trailer["manifest"]
    consistency: dict[str, Any] = trailer.get("consistency") or {}
    mode = consistency.get("mode")
    manifest = BackupManifest(
        path=source.path, database=str(header["database"]), created_at=header["created_at"],
        consistency=BackupConsistency(mode) if mode else None,
        cluster_time=consistency.get("cluster_time"),
        audit_records_left_out=int(consistency.get("audit_records_left_out") or 0),
        complete=bool(header.get("complete", False)), encrypted=source.encrypted,
        size_bytes=source.path.stat().st_size)
    for collection in header["collections"]:
        declared = declared_all.get(collection)
        if declared is None:
            raise BackupCorrupt(f"{name}: the manifest does not list {collection}")
        actual = digests[collection].hexdigest()
        if declared["count"] != counts[collection] or declared["sha256"] != actual:
            raise BackupCorrupt(
                f"{name}: {collection} does not match its manifest "
                f"({counts[collection]} documents, manifest says {declared['count']}; "
                f"checksum {'ok' if declared['sha256'] == actual else 'differs'})"
            )
        manifest.collections.append(CollectionEntry(
            collection, counts[collection], actual, declared.get("started_at"),
            declared.get("finished_at")))
    return manifest


async def collection_digest(db: AsyncDatabase[dict[str, Any]], name: str) -> CollectionEntry:
    """A collection's count and checksum as `backup` computes them (a drill compares the two)."""
    digest = hashlib.sha256()
    count = 0
    async for doc in _documents(db, name, None):
        digest.update(_dump(doc).encode() + b"\n")
        count += 1
    return CollectionEntry(name, count, digest.hexdigest())


# restore ----------------------------------------------------------------------------------


@dataclass(slots=True)
class RestoreReport:
    manifest: BackupManifest
    restored: dict[str, int]
    replaced: dict[str, int]
    safety_backup: Path | None
    dry_run: bool
    relayed: int = 0
    contracts_completed: int = 0


async def restore(
    db: AsyncDatabase[dict[str, Any]],
    path: Path | BackupSource,
    *,
    collections: Sequence[str] | None = None,
    replace: bool = False,
    dry_run: bool = False,
    safety_directory: Path | None = None,
    services: Services | None = None,
    progress: ProgressSink = no_progress,
) -> RestoreReport:
    """Restore a backup exactly (validation bypassed: the documents are put back as they were).

    Refuses, before writing anything, when the file fails its authentication or checksums or
    a target collection holds documents and `replace` is not given. With `replace`, the
    collections about to be replaced are first backed up to a safety file in
    `safety_directory` (encrypted with the source's keys). Nothing is replaced until every
    collection is loaded in full (see the module docstring). With `services` (the target's),
    the audit records still riding in restored documents are then relayed, and contracts a
    collection-by-collection read caught half-written are completed (schedules and
    subscription entries of investments read after their schedule's collection, payouts whose
    item was read before its ledger entry).
    """
    source = _source(path)
    name = source.path.name
    manifest = verify_file(source)
    names = [c.name for c in manifest.collections]
    if collections is not None:
        unknown = sorted(set(collections) - set(names))
        if unknown:
            raise CommandRefused(f"{name} holds no collection named {', '.join(unknown)}")
        names = [n for n in names if n in set(collections)]
    occupied = {n: await db[n].count_documents({}) for n in names}
    occupied = {n: count for n, count in occupied.items() if count}
    if occupied and not replace:
        listing = ", ".join(f"{n} ({count} documents)" for n, count in occupied.items())
        raise CommandRefused(
            f"refusing to restore over non-empty collections: {listing}; "
            "pass --replace to replace them (a safety backup is taken first)"
        )
    report = RestoreReport(manifest, {}, dict(occupied), None, dry_run)
    if dry_run:
        report.restored = {n: manifest.entry(n).count for n in names}
        return report
    if occupied:
        safety = default_path(db.name, "before-restore", directory=safety_directory,
                              encrypted=source.keys is not None)
        await backup(db, safety, collections=list(occupied), keys=source.keys)
        report.safety_backup = safety
    safety_note = (f"; safety backup of the replaced collections: {report.safety_backup}"
                   if report.safety_backup else "")
    token = uuid.uuid4().hex[:8]
    staging = {n: f"{n}{RESTORING_MARK}{token}" for n in names}
    try:
        for n in names:
            await _create_like(db, source=n, target=staging[n])
        await _load(db, source, staging, manifest.total, report, progress)
    except (PyMongoError, OSError, CommandRefused) as error:
        await _drop_all(db, staging.values())
        if isinstance(error, BackupCorrupt | BackupKeyMismatch):
            raise
        raise RestoreFailed(f"restoring {name} failed: {_describe(error)}; nothing was "
                            f"replaced{safety_note}") from error
    swapped: list[str] = []
    for n in names:
        try:
            await _rename(db, staging[n], n)
        except PyMongoError as error:
            await _drop_all(db, [staging[m] for m in names if m not in swapped])
            done = ", ".join(swapped) or "nothing"
            raise RestoreFailed(f"restoring {name}: replacing {n} failed "
                                f"({_describe(error)}); already replaced: {done}; the others "
                                f"are unchanged{safety_note}") from error
        swapped.append(n)
    if services is not None:
        try:
            report.relayed = await services.audit.relay()
            report.contracts_completed = sum(await services.contracts.complete_interrupted(
                actor=Actor.script("restore")))
            report.relayed += await services.audit.relay()
        except Exception as error:
            raise RestoreFailed(f"restored {name}, but relaying the audit records still in "
                                f"the restored documents failed ({_describe(error)}); the "
                                "API's relay finishes them") from error
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
    source: BackupSource,
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

    for item in source.lines():
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


# recording --------------------------------------------------------------------------------


def this_host() -> str:
    return f"{socket.gethostname()[:150]}:{os.getpid()}"


async def record_backup(
    db: AsyncDatabase[dict[str, Any]],
    *,
    trigger: BackupTrigger,
    started_at: datetime,
    finished_at: datetime,
    manifest: BackupManifest | None = None,
    error: str | None = None,
    slot: datetime | None = None,
    complete: bool = True,
) -> BackupRun:
    """Record a backup run in `backup_runs` (what `/health` and the scheduler read)."""
    run = BackupRun(
        kind=BackupRunKind.BACKUP, trigger=trigger,
        outcome=BackupOutcome.FAILED if error else BackupOutcome.SUCCEEDED,
        slot=slot, started_at=started_at, finished_at=finished_at,
        file=str(manifest.path)[:500] if manifest else None,
        size_bytes=manifest.size_bytes if manifest else None,
        encrypted=manifest.encrypted if manifest else None,
        consistency=manifest.consistency if manifest else None,
        complete=manifest.complete if manifest else complete,
        documents=manifest.total if manifest else None,
        error=error[:500] if error else None, host=this_host())
    return await BackupRunRepository(db).record(run)


# command line -----------------------------------------------------------------------------


def _split(value: str | None) -> list[str] | None:
    return [part.strip() for part in value.split(",") if part.strip()] if value else None


def backup_parser() -> argparse.ArgumentParser:
    parser = base_parser("make backup", "Back up the database (or chosen collections) to one "
                         "gzip file of Extended JSON lines with a manifest of counts and SHA-256 "
                         "checksums, encrypted with BACKUP_ENCRYPTION_KEY when it is set.",
                         writes=False)
    parser.add_argument("--out", type=Path, help="file to write (default: BACKUP_DIRECTORY/...)")
    parser.add_argument("--collections", help="comma-separated names (default: all)")
    return parser


async def _backup_command(ctx: Context) -> Outcome:
    keys = BackupKeys.from_settings(ctx.settings)
    chosen = _split(ctx.args.collections)
    # Only whole-database files are named "backup": the drill and retention look for those.
    path = ctx.args.out or default_path(ctx.db.name, "backup" if chosen is None else "partial",
                                        directory=ctx.settings.backup_directory,
                                        encrypted=keys is not None)
    started = utcnow()
    try:
        with ctx.track("backing up") as progress:
            manifest = await backup(ctx.db, path, collections=chosen, keys=keys,
                                    progress=progress)
    except (PyMongoError, OSError) as error:
        await record_backup(ctx.db, trigger=BackupTrigger.MANUAL, started_at=started,
                            finished_at=utcnow(), error=_describe(error),
                            complete=chosen is None)
        raise
    await record_backup(ctx.db, trigger=BackupTrigger.MANUAL, started_at=started,
                        finished_at=utcnow(), manifest=manifest)
    rows = [(c.name, c.count, c.sha256[:16]) for c in manifest.collections]
    messages = [consistency_line(manifest)]
    if keys is None:
        messages.append("not encrypted: BACKUP_ENCRYPTION_KEY is not set (production requires "
                        "it)")
    return Outcome(
        title=f"backup written to {path}",
        columns=("collection", "documents", "sha256 (prefix)"),
        rows=rows,
        data={"path": str(path), "total": manifest.total, "encrypted": manifest.encrypted,
              "consistency": manifest.consistency.value if manifest.consistency else None,
              "cluster_time": str(manifest.cluster_time) if manifest.cluster_time else None,
              "audit_records_left_out": manifest.audit_records_left_out,
              "collections": {c.name: {"count": c.count, "sha256": c.sha256}
                              for c in manifest.collections}},
        messages=messages,
    )


def consistency_line(manifest: BackupManifest) -> str:
    if manifest.consistency is BackupConsistency.SNAPSHOT:
        return f"read at one cluster time ({manifest.cluster_time})"
    return (f"read one collection after another (no snapshot reads on this server); "
            f"{manifest.audit_records_left_out} audit record(s) of later changes left out")


def backup_main(argv: Sequence[str] | None = None, *, settings: Settings | None = None) -> int:
    return run_command(argv, parser=backup_parser(), handler=_backup_command, settings=settings)


def restore_parser() -> argparse.ArgumentParser:
    parser = base_parser("make restore", "Restore a backup file exactly, after authenticating "
                         "it and checking its manifest. Refuses non-empty collections unless "
                         "--replace.", writes=True)
    parser.add_argument("file", type=Path, help="backup file (.jsonl.gz.enc or .jsonl.gz)")
    parser.add_argument("--collections", help="restore only these (comma-separated)")
    parser.add_argument("--replace", action="store_true",
                        help="empty non-empty target collections first (after a safety backup)")
    parser.add_argument("--allow-unencrypted", action="store_true",
                        help="accept an unencrypted file although BACKUP_ENCRYPTION_KEY is set")
    return parser


async def _restore_command(ctx: Context) -> Outcome:
    run_id = f"restore-{utcnow():%Y%m%dT%H%M%S}"
    source = BackupSource(ctx.args.file, BackupKeys.from_settings(ctx.settings),
                          allow_unencrypted=ctx.args.allow_unencrypted)
    with ctx.track("restoring") as progress:
        report = await restore(ctx.db, source, collections=_split(ctx.args.collections),
                               replace=ctx.args.replace, dry_run=ctx.args.dry_run,
                               safety_directory=ctx.settings.backup_directory,
                               services=Services(ctx.db, ctx.settings), progress=progress)
    if not report.dry_run:
        await record_script_run(
            ctx.db, script="restore", action="data_script.restore", run_id=run_id,
            summary={"file": str(ctx.args.file), "restored": report.restored,
                     "replaced": report.replaced, "relayed_audit_records": report.relayed,
                     "safety_backup": str(report.safety_backup) if report.safety_backup else None},
        )
    rows = [(name, count, report.replaced.get(name, 0)) for name, count in report.restored.items()]
    messages = [f"safety backup of the replaced collections: {report.safety_backup}"] \
        if report.safety_backup else []
    if report.relayed:
        messages.append(f"{report.relayed} audit record(s) relayed from restored documents")
    verb = "would restore" if report.dry_run else "restored"
    return Outcome(
        title=f"{verb} {ctx.args.file.name} (authenticated, checksums verified)"
        if report.manifest.encrypted else f"{verb} {ctx.args.file.name} (checksums verified)",
        columns=("collection", verb, "replaced"),
        rows=rows,
        data={"file": str(ctx.args.file), "dry_run": report.dry_run, "restored": report.restored,
              "replaced": report.replaced, "relayed_audit_records": report.relayed,
              "safety_backup": str(report.safety_backup) if report.safety_backup else None},
        messages=messages,
    )


def restore_main(argv: Sequence[str] | None = None, *, settings: Settings | None = None) -> int:
    return run_command(argv, parser=restore_parser(), handler=_restore_command, settings=settings)
