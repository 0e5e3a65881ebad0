"""KYC documents: metadata in `documents`, content in GridFS (or a configured directory),
SHA-256 checked when the content is read back."""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import unicodedata
from pathlib import Path

from bson import ObjectId

from backend.errors import (
    DocumentCorrupted,
    InvalidData,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from backend.models.documents import (
    DocumentStorage,
    DocumentType,
    KycDocument,
    VerificationStatus,
)
from backend.models.users import User
from backend.repositories.base import Clock, Page, utcnow
from backend.repositories.registry import Repositories
from backend.services.audit import Actor, AuditTrail
from backend.services.idempotency import Created, create_once
from backend.settings import Settings

ALLOWED_MIME_TYPES = frozenset({"application/pdf", "image/jpeg", "image/png"})
_MAGIC = {
    "application/pdf": (b"%PDF-",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
}
#: The file-name extensions each accepted type may carry; the first is added to a bare name.
EXTENSIONS = {
    "application/pdf": (".pdf",),
    "image/jpeg": (".jpg", ".jpeg"),
    "image/png": (".png",),
}
_UNSAFE_RUN = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_NAME = 120


def safe_filename(name: str) -> str:
    """A file name reduced to `[A-Za-z0-9._-]`: the last path part, accents folded to their
    letter (NFKD), every other character (controls, bidi overrides, spaces, quotes, other
    scripts) dropped or turned into `_`, no leading dot, at most 120 characters."""
    last = name.replace("\\", "/").rsplit("/", 1)[-1]
    folded = unicodedata.normalize("NFKD", last).encode("ascii", "ignore").decode("ascii")
    cleaned = _UNSAFE_RUN.sub("_", folded)
    cleaned = re.sub(r"\.{2,}", ".", cleaned).strip("._-")
    if len(cleaned) > _MAX_NAME:
        stem, dot, extension = cleaned.rpartition(".")
        keep = _MAX_NAME - len(dot + extension)
        cleaned = (stem[:keep] + dot + extension) if dot and keep > 0 else cleaned[:_MAX_NAME]
    return cleaned or "document"


def sniff(content: bytes) -> str | None:
    """The accepted type the content really is, by its first bytes."""
    for mime_type, signatures in _MAGIC.items():
        if content.startswith(signatures):
            return mime_type
    return None


def upload_name(filename: str, mime_type: str) -> str:
    """The name a new upload is stored under: safe ASCII, with an extension that matches the
    sniffed type (added when the name has none; a different one is refused)."""
    name = safe_filename(filename)
    stem, dot, extension = name.rpartition(".")
    allowed = EXTENSIONS[mime_type]
    if not dot or not stem:
        return name + allowed[0]
    if "." + extension.lower() not in allowed:
        raise UnsupportedMediaType(
            f"the file name ends in .{extension}, but the content is {mime_type}",
            code="EXTENSION_MISMATCH",
            details={"extension": extension, "allowed": list(allowed)})
    return name


class DocumentService:
    def __init__(self, repos: Repositories, settings: Settings, audit: AuditTrail, *,
                 clock: Clock = utcnow) -> None:
        self.settings = settings
        self.audit = audit
        self.clock = clock
        self.repo = repos.documents
        self.files = repos.kyc_files
        self.storage = (DocumentStorage.GRIDFS if settings.document_storage == "gridfs"
                        else DocumentStorage.FILESYSTEM)
        self.directory = None if self.storage is DocumentStorage.GRIDFS else Path(
            settings.document_storage)

    def _check(self, content: bytes, mime_type: str) -> None:
        if not content:
            raise InvalidData("the file is empty", code="EMPTY_FILE")
        if len(content) > self.settings.document_max_bytes:
            raise PayloadTooLarge(
                f"the file is larger than {self.settings.document_max_bytes} bytes",
                details={"max_bytes": self.settings.document_max_bytes})
        if mime_type not in ALLOWED_MIME_TYPES:
            raise UnsupportedMediaType("only PDF, JPEG and PNG files are accepted",
                                       details={"allowed": sorted(ALLOWED_MIME_TYPES)})
        if sniff(content) != mime_type:
            raise UnsupportedMediaType("the file content does not match its declared type",
                                       code="MEDIA_TYPE_MISMATCH")

    async def _store(self, content: bytes, filename: str) -> str:
        if self.directory is None:
            return await self.files.put(filename, content)
        key = secrets.token_hex(16)
        path = self.directory / key
        await asyncio.to_thread(self._write_file, path, content)
        return key

    @staticmethod
    def _write_file(path: Path, content: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)

    async def _load(self, document: KycDocument) -> bytes:
        content: bytes | None
        if document.storage is DocumentStorage.GRIDFS:
            content = await self.files.read(document.storage_key)
        else:
            assert self.directory is not None
            try:
                content = await asyncio.to_thread(
                    (self.directory / document.storage_key).read_bytes)
            except FileNotFoundError:
                content = None
        if content is None:
            raise DocumentCorrupted("the document's content is missing")
        return content

    async def upload(self, user: User, *, document_type: DocumentType, filename: str,
                     mime_type: str, content: bytes) -> KycDocument:
        return (await self.upload_once(user, document_type=document_type, filename=filename,
                                       mime_type=mime_type, content=content)).item

    async def upload_once(self, user: User, *, document_type: DocumentType, filename: str,
                          mime_type: str, content: bytes,
                          idempotency_key: str | None = None) -> Created[KycDocument]:
        """Store an upload once per Idempotency-Key (see `backend/services/idempotency.py`):
        a repeated key finds the first document before any content is stored again. A key is
        the uploader's own: another user's key is refused, never answered with their file."""
        self._check(content, mime_type)
        safe_name = upload_name(filename, mime_type)
        digest = hashlib.sha256(content).hexdigest()

        async def build() -> KycDocument:
            key = await self._store(content, safe_name)
            now = self.clock()
            return KycDocument(
                user_id=user.id, document_type=document_type, storage=self.storage,
                storage_key=key, original_filename=safe_name, sha256=digest,
                size_bytes=len(content), mime_type=mime_type,
                verification_status=VerificationStatus.PENDING,
                idempotency_key=idempotency_key, created_at=now, updated_at=now, version=1,
            )

        def same(document: KycDocument) -> bool:
            return (document.user_id, document.document_type, document.sha256,
                    document.mime_type) == (user.id, document_type, digest, mime_type)

        def name(document: KycDocument) -> dict[str, str]:
            return {"document_id": str(document.id)} if document.user_id == user.id else {}

        return await create_once(
            self.audit, self.repo, build, key=idempotency_key, same=same, what="document",
            name=name, actor=Actor.user(user.id, user.user_type), action="document.upload",
            entity_type="document")

    async def download(self, document: KycDocument) -> bytes:
        content = await self._load(document)
        if hashlib.sha256(content).hexdigest() != document.sha256:
            raise DocumentCorrupted("the document's content does not match its checksum")
        return content

    async def get(self, document_id: ObjectId | str) -> KycDocument:
        return await self.repo.get(document_id)

    async def for_user(self, user_id: ObjectId) -> list[KycDocument]:
        return await self.repo.for_user(user_id)

    async def pending(self, *, page: int = 1, page_size: int = 20) -> Page[KycDocument]:
        return await self.repo.pending(page=page, page_size=page_size)

    async def get_for_user(self, document_id: ObjectId | str, user: User) -> KycDocument:
        document = await self.repo.get(document_id)
        if document.user_id != user.id:
            # Someone else's document is answered as missing, so ids cannot be probed.
            raise NotFound("no such document", details={"id": str(document_id)})
        return document

    async def review(self, document_id: ObjectId | str, status: VerificationStatus, *,
                     actor: Actor, reason: str | None = None) -> KycDocument:
        current = await self.repo.get(document_id)
        if current.verification_status is not VerificationStatus.PENDING:
            raise InvalidData("only a pending document can be reviewed",
                              code="TRANSITION_NOT_ALLOWED",
                              details={"status": current.verification_status.value})
        if status is VerificationStatus.REJECTED and not reason:
            raise InvalidData("a rejection needs a reason", code="REASON_REQUIRED")
        changes = {"verification_status": status.value, "reviewed_by": actor.id,
                   "reviewed_at": self.clock(), "rejection_reason": reason}

        return await self.audit.update(self.repo, current, changes, actor=actor,
                                       action=f"document.{status.value}",
                                       entity_type="document", reason=reason)
